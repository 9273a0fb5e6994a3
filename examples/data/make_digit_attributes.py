"""Write digit_attributes.csv: scikit-learn's 8x8 digits as 64 pixel columns plus three
yes/no attributes of each digit (even, prime, greater than 4), a real multi-label table.

Run: python examples/data/make_digit_attributes.py
"""

from pathlib import Path

import pandas as pd
from sklearn.datasets import load_digits

digits = load_digits()
frame = pd.DataFrame(digits.data.astype(int), columns=[f"p{i}" for i in range(64)])
frame["even"] = (digits.target % 2 == 0).astype(int)
frame["prime"] = pd.Series(digits.target).isin([2, 3, 5, 7]).astype(int)
frame["greater_than_4"] = (digits.target > 4).astype(int)
out = Path(__file__).with_name("digit_attributes.csv")
frame.to_csv(out, index=False)
print(f"wrote {len(frame)} rows to {out}")
