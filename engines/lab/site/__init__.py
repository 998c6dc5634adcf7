"""A new hospital: its polyp-free footage read and checked (footage.py), the evidence a model ships for commissioning
(kit.py), and commissioning itself: the last stage and head fine-tuned with the site's frames as negatives
(commission.py), its operating point (operating.py) and its files (write.py)."""
