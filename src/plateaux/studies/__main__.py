"""`python -m plateaux.studies [--fast] [--steps N]`: the README's schedule study."""

import argparse
import time

from ._regular import schedule_study


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m plateaux.studies", description=__doc__)
    parser.add_argument("--steps", type=int, default=150, help="Adam steps on the schedule (default 150)")
    parser.add_argument("--fast", action="store_true", help="10 Adam steps (a quick check)")
    args = parser.parse_args()
    start = time.perf_counter()
    study = schedule_study(steps=10 if args.fast else args.steps)
    print(study.table())
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
