"""Model Alignment Search (docs/METHODS.md § MAS): alignment functions, interchange interventions, the
counterfactual data of each direction with its frozen activations, and the training loop."""
