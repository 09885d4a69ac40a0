"""`mas pipeline`: an experiment as train and align jobs, run and reported."""
