"""What the operator sees of the store: `status`, one customer's profile, exports. Read only."""
