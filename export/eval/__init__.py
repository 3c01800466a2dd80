"""Evaluation: detector recall/AP, leak rate, utility (AP retention) and identity, as commands."""
