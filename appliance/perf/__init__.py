"""Speed: the streaming benchmark and thread auto-tuning, both through the real stack."""
