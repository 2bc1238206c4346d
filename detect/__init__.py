"""detect: evidence that an image is AI-made or a near-duplicate, and one verdict."""
