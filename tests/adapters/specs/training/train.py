"""Stand-in for training/train.py: only its presence matters (it is uploaded as the job's code snapshot)."""
