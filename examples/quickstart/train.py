"""Logistic regression on a small two-class data set, in plain Python.

Written the Azure ML Workbench way: metrics go through azureml.logging, the model is written
to outputs/, so `xp history info` shows the accuracy and the model comes back as an artifact.

    xp experiment submit -c local train.py --lr 0.5 --epochs 200
"""

import argparse
import csv
import json
import math
import os
import random

from azureml.logging import get_azureml_logger

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.5, help="learning rate")
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()

logger = get_azureml_logger()
random.seed(args.seed)

with open("data/flowers.csv") as f:
    rows = [(float(r["petal_length"]), float(r["petal_width"]), int(r["label"])) for r in csv.DictReader(f)]
random.shuffle(rows)
split = int(len(rows) * 0.7)
train, test = rows[:split], rows[split:]

# Standardise both features with the training set's statistics.
stats = []
for column in (0, 1):
    values = [row[column] for row in train]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    stats.append((mean, std))
train = [((a - stats[0][0]) / stats[0][1], (b - stats[1][0]) / stats[1][1], y) for a, b, y in train]
test = [((a - stats[0][0]) / stats[0][1], (b - stats[1][0]) / stats[1][1], y) for a, b, y in test]


def predict(w, x1, x2):
    z = w[0] + w[1] * x1 + w[2] * x2
    return 1.0 / (1.0 + math.exp(-max(min(z, 30), -30)))


def accuracy(w, data):
    return sum((predict(w, x1, x2) >= 0.5) == bool(y) for x1, x2, y in data) / len(data)


w = [0.0, 0.0, 0.0]
for epoch in range(args.epochs):
    loss = 0.0
    grad = [0.0, 0.0, 0.0]
    for x1, x2, y in train:
        p = predict(w, x1, x2)
        loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
        for i, xi in enumerate((1.0, x1, x2)):
            grad[i] += (p - y) * xi
    w = [wi - args.lr * gi / len(train) for wi, gi in zip(w, grad)]
    if epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs - 1:
        logger.log("loss", loss / len(train))
        print("epoch %4d  loss %.4f" % (epoch, loss / len(train)))

acc = accuracy(w, test)
logger.log("Learning Rate", args.lr)
logger.log("Accuracy", acc)
print("test accuracy: %.3f" % acc)

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.json", "w") as f:
    json.dump({"weights": w, "feature_stats": stats, "accuracy": acc}, f, indent=2)
