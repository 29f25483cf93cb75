"""`mlops simulate`: a history replayed through the app's own handlers on a simulated clock, once per retraining
policy, to compare the policies before one runs in production."""
