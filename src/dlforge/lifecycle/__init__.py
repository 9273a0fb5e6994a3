"""A model's life after its first run: the champion/challenger gate, promotion and rollback
(`promote`), transfer learning (`transfer`), drift and training-serving skew (`drift`,
`reference`, `reservoir`). Every model trained here is a candidate of the one path
(`candidate.train_candidate`)."""
