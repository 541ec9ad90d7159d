"""One node's pipeline: states, steps and the job that runs them."""
