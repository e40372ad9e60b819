"""Gateway accounts from the command line (the first admin has no token to call the API with).

    python -m services.gateway.cli create-admin --name "Ops"
    python -m services.gateway.cli create-user --name "Maria" --role mentor --program prog-1 --person mentor-7
    python -m services.gateway.cli create-token usr_0123456789abcdef --label laptop
    python -m services.gateway.cli list-users

The store is the gateway's own (MENTORING_DATABASE_URL or MENTORING_DATA_DIR, as for the server).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from services.gateway.domain.access import Role
from services.gateway.runtime import open_store
from services.gateway.service_layer import accounts
from services.gateway.settings import GatewaySettings
from shared.clock import SystemClock
from shared.errors import DomainError

app = typer.Typer(help="Gateway users and bearer tokens.", no_args_is_help=True, add_completion=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object (for scripts)")]


def _fail(exc: DomainError) -> typer.Exit:
    for problem in exc.problems:
        typer.echo(f"error: {problem.field}: {problem.reason}", err=True)
    return typer.Exit(code=2)


def _issue(
    name: str, role: Role, programs: list[str], person: str | None, email: str | None, label: str, as_json: bool,
    reuse: bool = False,
) -> None:
    db = open_store(GatewaySettings())
    clock = SystemClock()
    try:
        with db.session() as s:
            existing = accounts.find_user(s, name=name, role=role) if reuse else None
            user = existing or accounts.create_user(
                s, clock, name=name, role=role, program_ids=programs, person_id=person, email=email
            )
            token = accounts.issue_token(s, clock, user.id, label)
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps({"user_id": user.id, "role": role.value, "token_id": token.token_id,
                               "token": token.secret, "created": existing is None}))
    else:
        done = "exists" if existing else "created"
        typer.echo(f"user {user.id} ({role.value}) {done}; new token {token.token_id} (shown once):")
        typer.echo(token.secret)


@app.command("create-admin")
def create_admin(
    name: Annotated[str, typer.Option(help="Who the admin is")],
    label: Annotated[str, typer.Option(help="A label for the token")] = "cli",
    reuse: Annotated[bool, typer.Option("--reuse", help="If an admin of this name exists, give it a new token "
                                                        "instead of creating another admin (run scripts)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an admin user and print its first bearer token."""
    _issue(name, Role.ADMIN, [], None, None, label, as_json, reuse)


@app.command("create-user")
def create_user(
    name: Annotated[str, typer.Option()],
    role: Annotated[Role, typer.Option()],
    program: Annotated[list[str] | None, typer.Option(help="A program id (repeat for several)")] = None,
    person: Annotated[str | None, typer.Option(help="The matching service's mentor/mentee/metamentor id")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    label: Annotated[str, typer.Option(help="A label for the token")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Create a user of any role and print its first bearer token."""
    _issue(name, role, program or [], person, email, label, as_json)


@app.command("create-token")
def create_token(
    user_id: Annotated[str, typer.Argument(help="The user's id (usr_...)")],
    label: Annotated[str, typer.Option()] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Issue another bearer token for an existing user and print it."""
    db = open_store(GatewaySettings())
    try:
        with db.session() as s:
            token = accounts.issue_token(s, SystemClock(), user_id, label)
    except DomainError as exc:
        raise _fail(exc) from None
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps({"user_id": user_id, "token_id": token.token_id, "token": token.secret}))
    else:
        typer.echo(f"token {token.token_id} for {user_id} (shown once):")
        typer.echo(token.secret)


@app.command("list-users")
def list_users() -> None:
    """Every user: id, role, programs, person id."""
    db = open_store(GatewaySettings())
    try:
        with db.session() as s:
            users = accounts.list_users(s)
    finally:
        db.dispose()
    for u in users:
        typer.echo(f"{u.id}\t{u.role}\t{','.join(u.programs()) or '*'}\t{u.person_id or '-'}\t{u.name}")


if __name__ == "__main__":
    app()
