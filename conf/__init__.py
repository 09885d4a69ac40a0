# Installed as the package `mas_cli.conf` so Hydra finds the configs with pkg://mas_cli.conf.
