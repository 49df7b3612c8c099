"""Running a validator: the CometBFT process and the ABCI app as one supervised unit."""
