"""The drill scenarios, one module per family (database, cache, proofs,
application), and the registry that loads them."""
