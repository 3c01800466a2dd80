"""PyTorch models of edgeanon: the CenterFace detector and the face generator."""
