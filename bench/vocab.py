"""The benchmark data's vocabulary: event types and their shares, the fixed `now`, and the
value lists (cities, categories, product titles, search terms, app facts) events draw from."""

from __future__ import annotations

import datetime as dt

import numpy as np

DAY_MS = 86_400_000
# The fixed "now" of every dataset: a Friday afternoon; tomorrow is 28 February of a
# non-leap year, so the birthday-tomorrow segment also picks up 29 February birthdays.
DEFAULT_NOW_MS = int(dt.datetime(2026, 2, 27, 14, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)

EVENT_TYPES: tuple[str, ...] = (
    "productViewed",
    "productCategoryViewed",
    "cartUpdated",
    "purchase",
    "searchRequest",
    "AppInstall",
    "AppLaunched",
    "WorkoutStarted",
    "emailOpened",
    "webPushSubscribed",
)
# Share of all events per type, before persona fallbacks (index as EVENT_TYPES).
TYPE_SHARE = np.array([0.33, 0.12, 0.08, 0.035, 0.07, 0.01, 0.16, 0.10, 0.08, 0.005])
V2_TYPES = frozenset({"productViewed", "productCategoryViewed", "cartUpdated", "purchase", "searchRequest"})
T_PV, T_PCV, T_CART, T_BUY, T_SEARCH, T_INSTALL, T_LAUNCH, T_WORKOUT, T_EMAIL, T_PUSH = range(10)

CITIES = ("London", "Kyiv", "Berlin", "Paris", "Warsaw", "Madrid", "Rome", "Lisbon", "Prague",
          "Vienna", "Dublin", "Amsterdam", "Oslo", "Athens", "Lviv", "Odesa", "Krakow", "Milan",
          "Munich", "Porto")
CATEGORIES = ("iPhone", "Android Phones", "Laptops", "Tablets", "Headphones", "Smart Watches",
              "Mugs", "Kitchen", "Sneakers", "Running Shoes", "Jackets", "T-Shirts", "Jeans",
              "Backpacks", "Toys", "Books", "Games", "Cameras", "TVs", "Speakers", "Garden",
              "Tools", "Beauty", "Perfume", "Watches", "Jewelry", "Sports", "Yoga Mats",
              "Bikes", "Pet Food")
TITLES = ("sneakers", "t-shirt", "jeans", "jacket", "hoodie", "cap", "socks", "backpack",
          "mug", "kettle", "headphones", "phone case", "charger", "smart watch", "laptop stand",
          "yoga mat", "dumbbells", "water bottle", "running shoes", "sunglasses", "wallet",
          "perfume", "lipstick", "book", "board game", "dog food", "cat toy", "plant pot",
          "garden hose", "drill", "camera", "speaker", "tv mount", "bike light", "helmet",
          "scarf", "gloves", "umbrella", "notebook", "pen set")
# Category and base price (whole currency units) of each title, index as TITLES.
TITLE_CATEGORY = (8, 11, 12, 10, 10, 11, 11, 13, 6, 7, 4, 0, 1, 5, 2, 27, 26, 26, 9, 24, 25,
                  23, 22, 15, 16, 29, 14, 20, 20, 21, 17, 19, 18, 28, 28, 10, 10, 13, 15, 15)
TITLE_PRICE = (120, 25, 60, 150, 55, 20, 8, 70, 12, 35, 90, 15, 25, 250, 30, 40, 60, 15, 130,
               80, 45, 95, 25, 18, 40, 30, 10, 15, 25, 110, 600, 140, 45, 20, 60, 25, 20, 18, 7, 22)
SEARCH_TERMS = tuple(
    f"{a} {b}" for a in ("red", "cheap", "new", "best", "wireless", "kids", "mens", "womens", "eco", "pro")
    for b in ("sneakers", "phone", "jacket", "mug", "watch", "laptop", "toy", "book", "bag", "lamp")
)
OS_NAMES = ("iOS", "Android", "Windows", "macOS")
WORKOUTS = ("Strength", "Cardio", "Running", "Yoga", "HIIT", "Cycling")
DEVICES = ("Mobile", "Watch", "Tablet")
APP_VERSIONS = tuple(f"3.{minor}.0" for minor in range(12))
N_CAMPAIGNS = 200

# Value kinds of a numeric parameter as it is written to JSON.
KIND_NUMBER, KIND_NUMERIC_STRING, KIND_TEXT = 0, 1, 2
NOT_A_NUMBER_TEXT = "n/a"
