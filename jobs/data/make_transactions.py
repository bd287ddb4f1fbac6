#!/usr/bin/env python3
"""Write jobs/data/transactions.csv: realistic sample card and wallet transactions.

Deterministic (fixed seed), so the file in the repository is reproducible:
    python3 jobs/data/make_transactions.py > jobs/data/transactions.csv
Only the standard library is used.
"""

import csv
import random
import sys
import uuid

SEED = 20261127
ROWS = 5000

# (merchant, category, typical amount in EUR, spread)
MERCHANTS = [
    ("Rewe", "groceries", 38.0, 25.0),
    ("Lidl", "groceries", 27.0, 18.0),
    ("Carrefour", "groceries", 45.0, 30.0),
    ("Tesco", "groceries", 31.0, 20.0),
    ("Shell", "fuel", 62.0, 20.0),
    ("Aral", "fuel", 58.0, 18.0),
    ("Deutsche Bahn", "travel", 79.0, 60.0),
    ("Ryanair", "travel", 112.0, 80.0),
    ("Lufthansa", "travel", 340.0, 220.0),
    ("Booking.com", "lodging", 186.0, 120.0),
    ("Airbnb", "lodging", 240.0, 160.0),
    ("Starbucks", "restaurants", 7.5, 3.0),
    ("McDonald's", "restaurants", 11.0, 5.0),
    ("Vapiano", "restaurants", 24.0, 10.0),
    ("Lieferando", "restaurants", 29.0, 12.0),
    ("Amazon", "shopping", 46.0, 55.0),
    ("Zalando", "shopping", 78.0, 50.0),
    ("IKEA", "home", 134.0, 120.0),
    ("MediaMarkt", "electronics", 210.0, 260.0),
    ("Apple", "electronics", 95.0, 300.0),
    ("Netflix", "subscriptions", 13.99, 0.0),
    ("Spotify", "subscriptions", 10.99, 0.0),
    ("Vodafone", "utilities", 39.99, 10.0),
    ("E.ON", "utilities", 88.0, 35.0),
    ("Uber", "transport", 18.0, 10.0),
    ("BVG", "transport", 3.2, 1.0),
    ("dm", "health", 16.0, 9.0),
    ("Apotheke am Markt", "health", 21.0, 15.0),
    ("FitX", "fitness", 24.99, 0.0),
    ("Steam", "entertainment", 19.0, 15.0),
]
COUNTRIES = [("DE", "EUR", 0.45), ("FR", "EUR", 0.15), ("NL", "EUR", 0.08), ("ES", "EUR", 0.08),
             ("IT", "EUR", 0.07), ("GB", "GBP", 0.1), ("US", "USD", 0.05), ("CH", "CHF", 0.02)]
RATES = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08, "CHF": 0.95}
METHODS = [("card", 0.55), ("apple_pay", 0.15), ("google_pay", 0.1), ("sepa_debit", 0.1),
           ("paypal", 0.08), ("bank_transfer", 0.02)]
FIRST = ["Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hannah", "Ivan", "Jonas",
         "Katrin", "Lukas", "Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
        "Dubois", "Martin", "Rossi", "García", "Jansen", "Smith", "Nowak", "Yilmaz"]


def pick(rng, weighted):
    return rng.choices([w[:-1] if len(w) > 2 else w[0] for w in weighted],
                       weights=[w[-1] for w in weighted])[0]


def main():
    rng = random.Random(SEED)
    customers = [
        (f"cus_{rng.randrange(16**8):08x}", f"{rng.choice(FIRST)} {rng.choice(LAST)}")
        for _ in range(400)
    ]
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["transaction_id", "customer_id", "customer_name", "merchant", "category",
                  "amount", "currency", "payment_method", "country", "card_last4", "status"])
    for _ in range(ROWS):
        customer_id, name = rng.choice(customers)
        merchant, category, typical, spread = rng.choice(MERCHANTS)
        country, currency = pick(rng, COUNTRIES)
        amount = max(0.5, rng.gauss(typical, spread / 2)) if spread else typical
        amount = round(amount * RATES[currency], 2)
        method = pick(rng, METHODS)
        last4 = f"{rng.randrange(10000):04d}" if method in ("card", "apple_pay", "google_pay") else ""
        status = rng.choices(["approved", "declined", "refunded"], weights=[0.93, 0.05, 0.02])[0]
        tx_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        out.writerow([f"txn_{tx_id.hex[:20]}", customer_id, name, merchant, category,
                      f"{amount:.2f}", currency, method, country, last4, status])


if __name__ == "__main__":
    main()
