"""What every package of the project shares: the error root and the driver of sans-IO steps."""
