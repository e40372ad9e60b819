"""`mentoring`: the operator's one entry point.

mentoring run                      the whole system on the embedded default
mentoring kafka start|stop|status  the local broker (Java 17+ and Maven)
mentoring topics create|list       the topic catalog, created idempotently on any broker
mentoring catalog [EVENT]          every event with its topic, key and schema
mentoring tail TOPIC               decoded envelopes (filter by type, key, time; --follow)
mentoring lag [--group G]          consumer lag per group and partition
mentoring dlq list|replay          dead letters, and replaying a fixed one
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from deploy.kafka.local import LocalKafka
from shared.contracts import schema_catalog
from shared.messaging.admin import ensure_topics
from shared.topics import CATALOG

app = typer.Typer(help="Operate the mentoring platform.", no_args_is_help=True)
kafka_app = typer.Typer(help="The local Kafka broker (embedded default).", no_args_is_help=True)
topics_app = typer.Typer(help="The topic catalog.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter topics.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")
console = Console()

BOOTSTRAP = typer.Option(
    os.environ.get("MENTORING_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
    "--bootstrap",
    "-b",
    help="Kafka bootstrap servers (env MENTORING_KAFKA_BOOTSTRAP_SERVERS).",
)


def _broker(port: int, controller_port: int) -> LocalKafka:
    return LocalKafka(port=port, controller_port=controller_port)


@kafka_app.command("start")
def kafka_start(port: int = 9092, controller_port: int = 9093, heap: str = "768m") -> None:
    """Start the local broker (fetches jars once, formats storage once); idempotent."""
    broker = _broker(port, controller_port)
    broker.heap = heap
    broker.start()
    for line in broker.log:
        console.print(line)


@kafka_app.command("stop")
def kafka_stop(port: int = 9092, controller_port: int = 9093) -> None:
    """Stop the local broker; stopping a stopped broker is fine."""
    broker = _broker(port, controller_port)
    broker.stop()
    for line in broker.log:
        console.print(line)


@kafka_app.command("status")
def kafka_status(port: int = 9092, controller_port: int = 9093) -> None:
    broker = _broker(port, controller_port)
    pid = broker.pid()
    if pid is None:
        console.print(f"Kafka is not running (data in {broker.data})")
        raise typer.Exit(1)
    console.print(f"Kafka running on {broker.bootstrap} (pid {pid}, data in {broker.data})")


@topics_app.command("create")
def topics_create(bootstrap: str = BOOTSTRAP, prefix: str = "") -> None:
    """Create every catalog topic and its dead-letter topic that does not exist yet."""
    created = asyncio.run(ensure_topics(bootstrap, prefix=prefix))
    console.print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")


@topics_app.command("list")
def topics_list() -> None:
    """The catalog: partitions, key and retention of each topic."""
    table = Table("topic", "partitions", "key", "retention", "what")
    for t in CATALOG:
        retention = "forever" if t.retention_ms < 0 else f"{t.retention_ms // 86_400_000} days"
        table.add_row(t.name, str(t.partitions), t.key, retention, t.description)
    console.print(table)


@app.command("catalog")
def catalog(event: str = typer.Argument(None, help="Show one event's JSON schema.")) -> None:
    """Every event with its topic, key and (for one event) its schema."""
    entries = schema_catalog()
    if event:
        matches = {k: v for k, v in entries.items() if k.split()[0] == event}
        if not matches:
            console.print(f"[red]no event named {event!r}[/red]")
            raise typer.Exit(2)
        console.print_json(json.dumps(matches))
        return
    table = Table("event", "topic", "key", "fields")
    for name, entry in entries.items():
        schema = entry["schema"]
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        table.add_row(name, str(entry["topic"]), str(entry["key"]), ", ".join(props))
    console.print(table)


@app.command("tail")
def tail_topic(
    topic: str,
    bootstrap: str = BOOTSTRAP,
    event_type: str = typer.Option(None, "--type", help="Only this event type."),
    key: str = typer.Option(None, help="Only this record key (aggregate id)."),
    since: datetime = typer.Option(None, help="Only records from this time (ISO 8601)."),
    from_beginning: bool = typer.Option(False, "--from-beginning"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep waiting for new records."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Print a topic's records with their decoded envelope headers."""
    from deploy.ops import tail

    async def go() -> None:
        async for seen in tail(
            bootstrap,
            topic,
            from_beginning=from_beginning or (since is None and not follow),
            follow=follow,
            event_type=event_type,
            key=key,
            since=since,
        ):
            if as_json:
                print(
                    json.dumps(
                        {
                            "topic": seen.topic,
                            "partition": seen.partition,
                            "offset": seen.offset,
                            "key": seen.key,
                            "headers": seen.headers,
                            "payload": seen.payload,
                        }
                    )
                )
            else:
                h = seen.headers
                console.print(
                    f"[bold]{seen.topic}[{seen.partition}]@{seen.offset}[/bold] {h.get('occurred_at', '')} "
                    f"[cyan]{h.get('event_type', '?')} v{h.get('event_version', '?')}[/cyan] key={seen.key} "
                    f"id={h.get('event_id', '?')} corr={h.get('correlation_id', '')}"
                    + (
                        f" [red]{h['dlq_reason']}: {h.get('dlq_error', '')[:200]}[/red]"
                        if "dlq_reason" in h
                        else ""
                    )
                )
                console.print_json(json.dumps(seen.payload))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())


@app.command("lag")
def lag(bootstrap: str = BOOTSTRAP, group: str = typer.Option(None, help="One consumer group.")) -> None:
    """Consumer lag: end offset minus committed offset, per group and partition."""
    from deploy.ops import consumer_lag

    rows = asyncio.run(consumer_lag(bootstrap, group))
    table = Table("group", "topic", "partition", "committed", "end", "lag")
    for r in rows:
        table.add_row(r.group, r.topic, str(r.partition), str(r.committed), str(r.end), str(r.lag))
    console.print(table)


@dlq_app.command("list")
def dlq_list(topic: str, bootstrap: str = BOOTSTRAP) -> None:
    """Dead letters of a topic (give the domain topic or its .dlq), with reason and error."""
    from deploy.ops import tail

    dlq = topic if topic.endswith(".dlq") else topic + ".dlq"

    async def go() -> None:
        table = Table("partition", "offset", "event", "event_id", "reason", "attempts", "from", "error")
        async for seen in tail(bootstrap, dlq, from_beginning=True):
            h = seen.headers
            table.add_row(
                str(seen.partition),
                str(seen.offset),
                h.get("event_type", "?"),
                h.get("event_id", "?"),
                h.get("dlq_reason", "?"),
                h.get("dlq_attempts", "?"),
                f"{h.get('dlq_original_topic')}[{h.get('dlq_original_partition')}]@{h.get('dlq_original_offset')}",
                h.get("dlq_error", "")[:120],
            )
        console.print(table)

    asyncio.run(go())


@dlq_app.command("replay")
def dlq_replay(
    topic: str,
    partition: int = typer.Option(..., "--partition", "-p"),
    offset: int = typer.Option(..., "--offset", "-o"),
    bootstrap: str = BOOTSTRAP,
) -> None:
    """Send one dead letter back to its original topic (after the cause is fixed)."""
    from deploy.ops import replay_dead_letter

    dlq = topic if topic.endswith(".dlq") else topic + ".dlq"
    seen = asyncio.run(replay_dead_letter(bootstrap, dlq, partition, offset))
    console.print(
        f"replayed {seen.headers.get('event_type', '?')} {seen.headers.get('event_id', '?')} "
        f"to {seen.headers.get('dlq_original_topic')}"
    )


@app.command("asyncapi")
def asyncapi() -> None:
    """Regenerate the AsyncAPI documents under deploy/asyncapi/ from the services' brokers."""
    from deploy.asyncapi import write_all

    for path in write_all():
        console.print(f"wrote {path}")


@app.command("run")
def run(
    data_dir: Path = typer.Option(Path(".data"), help="Stores, mail and logs of the embedded default."),
    kafka_port: int = 9092,
    sample: bool = typer.Option(True, help="Load the sample program when the stores are empty."),
) -> None:
    """Run the whole system on the embedded default until Ctrl-C."""
    from deploy.runner import run_system

    raise typer.Exit(run_system(data_dir=data_dir, kafka_port=kafka_port, sample=sample, console=console))


if __name__ == "__main__":
    app()
