"""Published training and inference runs, as scenario files with the published figure beside each."""
