"""Model Alignment Search (SPEC §5): alignment functions, interchange interventions, the
counterfactual data of each direction with its frozen activations, and the training loop."""
