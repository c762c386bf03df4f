"""`calmon simulate`: realistic prediction and label traffic into any Kafka cluster."""

from __future__ import annotations

import argparse

from monitor.commands.common import add_config_argument, settings_from
from monitor.settings import parse_duration


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--scenario",
        required=True,
        help="scenario YAML: models, segments, label delays, drifts (see config/scenarios/)",
    )
    parser.add_argument(
        "--bootstrap-servers",
        help="Kafka bootstrap servers, comma separated (default: kafka.bootstrap_servers "
        "of the config); security options and topics come from the config",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="predictions per second")
    parser.add_argument("--duration", type=parse_duration, help="stop after this long (e.g. 10m)")
    parser.add_argument("--count", type=int, help="stop after this many predictions")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top, so that `--help` does not wait for it (monitor/cli.py).
    from monitor.shutdown import ShutdownSignals
    from monitor.sim.producer import Simulator, kafka_sender
    from monitor.sim.scenario import ScenarioError, load_scenario

    if args.duration is None and args.count is None:
        print("calmon simulate: give --duration or --count (a bounded run)")
        return 2
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as problem:
        print(problem)
        return 1
    settings = settings_from(args)
    options = settings.kafka.client_options()
    if args.bootstrap_servers:
        options["bootstrap_servers"] = args.bootstrap_servers.split(",")
    send, producer = kafka_sender(options)
    signals = ShutdownSignals()
    signals.install()
    simulator = Simulator(scenario, send, settings.kafka.topics, rate=args.rate, seed=args.seed)
    try:
        simulator.run(
            duration_s=args.duration, count=args.count, stop=lambda: signals.received is not None
        )
    finally:
        producer.flush(timeout=30)
        producer.close(timeout=10)
    stats = simulator.stats
    print(
        f"produced {stats.predictions} predictions, {stats.labels} labels "
        f"({stats.labels_early} before their prediction), {stats.malformed} malformed; "
        f"{stats.labels_never} labels never sent by design, "
        f"{stats.labels_pending_at_end} still delayed at the end (not sent)"
    )
    return 0
