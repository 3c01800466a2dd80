"""Developer kit for tests, scripts and benchmarks: a real mosquitto broker, a clip of real faces, a subscriber.

Host side only (it needs scikit-image and pytest): the runtime (edgeanon/) never imports it, and it is not part
of the installed package. Run what uses it from the repository root (`python -m pytest`, `python -m scripts.demo`,
`python -m bench.daemon_bench`), so `import devkit` finds this folder.
"""
