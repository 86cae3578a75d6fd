"""Where BMRS data lives: the raw response archive and the HDF5 stores of validated frames."""
