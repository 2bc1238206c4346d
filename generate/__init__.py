"""generate: image generator backends behind one sealing wrapper; no image leaves unsealed."""
