"""`spool runner install|uninstall|status`: the runner as a per-user service.

Linux: a systemd *user* unit in ``$XDG_CONFIG_HOME/systemd/user/`` (default
``~/.config/systemd/user/``), enabled and started with ``systemctl --user``; logs go to the
journal (``journalctl --user -u UNIT -f``). A user unit runs from the first login to the last
logout unless lingering is on; ``install`` says so, with the ``loginctl enable-linger`` line.

macOS: a launchd agent in ``~/Library/LaunchAgents/``, loaded with ``launchctl bootstrap
gui/UID``; its output goes to ``~/Library/Logs/housespool/LABEL.log`` (Console.app shows it).

Both carry the absolute interpreter (this ``sys.executable``, a venv's python kept as the
venv path, not resolved to the base interpreter), the absolute spool path, and exactly the
runner options given (a relative ``--scripts`` is made absolute, as the service starts in
the home folder). ``--name N`` installs a second service beside the first
(``housespool-runner-N``), e.g. a CPU and a GPU runner on one box.

Every system command goes through an injectable ``run(argv, timeout)`` (argument lists,
never a shell), so the install, uninstall and status flows are tested by recording argv.
What is written (the runner's command line, the unit and the plist) lives in
``house.service_files`` and is re-exported here.

Stopping: the runner finishes its job on the first SIGINT/SIGTERM and hands it back to
``pending/`` on a second. The systemd unit sends both (``ExecStop`` sends SIGINT, then systemd
its ``KillSignal``), so stopping the service or shutting down hands the running job back at
once instead of making the machine wait for it. launchd sends one SIGTERM and SIGKILLs after
``ExitTimeOut`` (60 s): a job still running then is killed and its lease expires, so it is
retried (or failed) like any job of a vanished runner.
"""

from __future__ import annotations

import argparse
import getpass
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from house.service_files import (
    RUNNER_FLAGS,
    ServiceSpec,
    launchd_log_dir,
    launchd_plist,
    runner_command,
    runner_flags,
    systemd_quote,
    systemd_unit,
)
from runner.machine.proc import Run, first_line, subprocess_run_default
from spool.errors import SpoolError, UsageError
from spool.protocol import publish_text

__all__ = [
    "ServiceError",
    "ServiceSpec",
    "ServiceEnv",
    "RUNNER_FLAGS",
    "runner_flags",
    "runner_command",
    "systemd_quote",
    "systemd_unit",
    "launchd_plist",
    "render",
    "install",
    "uninstall",
    "status",
    "cmd_service",
]

CMD_TIMEOUT = 30.0


class ServiceError(SpoolError):
    """The service manager refused or is not there (exit 1: the thing asked for failed)."""

    exit_code = 1


# --------------------------------------------------------------------------- the machine


def _system_name(system: str) -> str:
    s = system.lower()
    return "darwin" if s.startswith("darwin") else ("linux" if s.startswith("linux") else s)


@dataclass
class ServiceEnv:
    """Where and how to install: the platform, the user, their folders, the command runner."""

    system: str
    home: Path
    uid: int
    user: str
    config_home: Path
    run: Run = subprocess_run_default
    say: Callable[[str], None] = print

    @classmethod
    def current(cls, *, run: Run = subprocess_run_default, say: Callable[[str], None] = print) -> ServiceEnv:
        home = Path.home()
        xdg = os.environ.get("XDG_CONFIG_HOME")
        getuid = getattr(os, "getuid", None)
        return cls(
            system=_system_name(platform.system()),
            home=home,
            uid=getuid() if getuid is not None else -1,
            user=getpass.getuser(),
            config_home=Path(xdg) if xdg and os.path.isabs(xdg) else home / ".config",
            run=run,
            say=say,
        )

    @property
    def kind(self) -> str:
        if self.system == "linux":
            return "systemd"
        if self.system == "darwin":
            return "launchd"
        raise UsageError(
            f"spool runner install knows systemd (Linux) and launchd (macOS), not {self.system}: "
            "start `spool runner` from your own scheduler (on Windows: Task Scheduler, at log on)"
        )

    def unit_path(self, spec: ServiceSpec) -> Path:
        return self.config_home / "systemd" / "user" / spec.unit

    def plist_path(self, spec: ServiceSpec) -> Path:
        return self.home / "Library" / "LaunchAgents" / f"{spec.label}.plist"

    def path(self, spec: ServiceSpec) -> Path:
        return self.unit_path(spec) if self.kind == "systemd" else self.plist_path(spec)

    @property
    def domain(self) -> str:
        return f"gui/{self.uid}"


def render(spec: ServiceSpec, env: ServiceEnv) -> str:
    """The unit (Linux) or plist (macOS) text for ``spec``."""
    return systemd_unit(spec) if env.kind == "systemd" else launchd_plist(spec, env.home)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    publish_text(path, text)


def _systemctl(env: ServiceEnv, *words: str) -> tuple[int, str, str]:
    return env.run(["systemctl", "--user", *words], CMD_TIMEOUT)


def _no_user_manager(rc: int, out: str, err: str) -> str:
    if rc == 127:
        return "systemctl not found: this Linux does not use systemd"
    why = first_line(err, out) or f"exit {rc}"
    return f"systemctl --user failed ({why}); is a systemd user session running?"


def _linger_advice(env: ServiceEnv) -> str | None:
    rc, out, _ = env.run(["loginctl", "show-user", env.user, "--property=Linger"], CMD_TIMEOUT)
    if rc == 0 and "linger=yes" in out.replace(" ", "").lower():
        return None
    return (
        f"note: lingering is off for {env.user}, so this runner starts at your login and stops at your "
        f"last logout. To run it from boot with nobody logged in: sudo loginctl enable-linger {env.user}"
    )


def install(spec: ServiceSpec, env: ServiceEnv) -> int:
    """Write, enable and (re)start the service; ServiceError when the service manager refuses."""
    path = env.path(spec)
    text = render(spec, env)
    if env.kind == "systemd":
        rc, out, err = _systemctl(env, "--version")
        if rc == 127:
            raise ServiceError(
                _no_user_manager(rc, out, err) + "; use `spool runner install --print` with your init system"
            )
        _write(path, text)
        for words in (("daemon-reload",), ("enable", spec.unit), ("restart", spec.unit)):
            rc, out, err = _systemctl(env, *words)
            if rc != 0:
                _remove_systemd(spec, env, quiet=True)
                raise ServiceError(
                    f"systemctl --user {' '.join(words)} failed: {first_line(err, out) or f'exit {rc}'}; "
                    "is a systemd user session running? (nothing was installed)"
                )
        env.say(f"installed {spec.unit}: {path}")
        env.say(f"started: {' '.join(spec.argv)}")
        env.say(f"logs: journalctl --user -u {spec.unit} -f")
        advice = _linger_advice(env)
        if advice:
            env.say(advice)
        return 0
    # launchd
    launchd_log_dir(env.home).mkdir(parents=True, exist_ok=True)
    target = f"{env.domain}/{spec.label}"
    if env.run(["launchctl", "print", target], CMD_TIMEOUT)[0] == 0:
        env.run(["launchctl", "bootout", target], CMD_TIMEOUT)  # a re-install: unload the old one
    _write(path, text)
    env.run(["launchctl", "enable", target], CMD_TIMEOUT)
    rc, out, err = env.run(["launchctl", "bootstrap", env.domain, str(path)], CMD_TIMEOUT)
    if rc != 0:
        try:
            path.unlink()
        except OSError:
            pass
        raise ServiceError(
            f"launchctl bootstrap {env.domain} failed: {first_line(err, out) or f'exit {rc}'} "
            "(nothing was installed; agents load in a logged-in session)"
        )
    env.say(f"installed {spec.label}: {path}")
    env.say(f"started: {' '.join(spec.argv)}")
    env.say(f"logs: {launchd_log_dir(env.home) / (spec.label + '.log')}")
    return 0


def _remove_systemd(spec: ServiceSpec, env: ServiceEnv, *, quiet: bool = False) -> bool:
    path = env.unit_path(spec)
    existed = path.exists()
    _systemctl(env, "disable", "--now", spec.unit)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    _systemctl(env, "daemon-reload")
    _systemctl(env, "reset-failed", spec.unit)
    return existed


def uninstall(spec: ServiceSpec, env: ServiceEnv) -> int:
    """Stop, disable and remove the service; nothing there is not an error."""
    if env.kind == "systemd":
        if _remove_systemd(spec, env):
            env.say(f"uninstalled {spec.unit} (its running job, if any, went back to pending/)")
        else:
            env.say(f"{spec.unit} is not installed: nothing to do")
        return 0
    path = env.plist_path(spec)
    target = f"{env.domain}/{spec.label}"
    loaded = env.run(["launchctl", "print", target], CMD_TIMEOUT)[0] == 0
    if loaded:
        env.run(["launchctl", "bootout", target], CMD_TIMEOUT)
    existed = path.exists()
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    if loaded or existed:
        env.say(f"uninstalled {spec.label}")
    else:
        env.say(f"{spec.label} is not installed: nothing to do")
    return 0


def _properties(text: str, sep: str = "=") -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, s, value = line.partition(sep)
        if s and key.strip() and key.strip() not in props:
            props[key.strip()] = value.strip()
    return props


def status(spec: ServiceSpec, env: ServiceEnv) -> int:
    """Say whether the service is installed, enabled and running: 0 running, 1 otherwise."""
    path = env.path(spec)
    installed = path.exists()
    if env.kind == "systemd":
        rc, out, err = _systemctl(
            env, "show", spec.unit, "-p", "LoadState", "-p", "ActiveState", "-p", "SubState",
            "-p", "UnitFileState", "-p", "MainPID",
        )  # fmt: skip
        if rc != 0:
            where = f"unit file {path}" if installed else "no unit file"
            env.say(f"{spec.unit}: {where}; {_no_user_manager(rc, out, err)}")
            return 1
        p = _properties(out)
        if not installed and p.get("LoadState") in (None, "", "not-found"):
            env.say(f"{spec.unit}: not installed (spool runner install)")
            return 1
        active = p.get("ActiveState", "unknown")
        sub = p.get("SubState", "")
        enabled = p.get("UnitFileState", "unknown") or "unknown"
        pid = p.get("MainPID", "0")
        state = f"{active} ({sub})" if sub else active
        if pid not in ("", "0"):
            state += f", pid {pid}"
        env.say(f"{spec.unit}: {state}; {enabled}; {path}")
        env.say(f"logs: journalctl --user -u {spec.unit} -f")
        return 0 if active == "active" else 1
    target = f"{env.domain}/{spec.label}"
    rc, out, err = env.run(["launchctl", "print", target], CMD_TIMEOUT)
    if rc != 0:
        what = f"installed at {path} but not loaded" if installed else "not installed (spool runner install)"
        env.say(f"{spec.label}: {what}")
        return 1
    p = _properties(out)
    state = p.get("state", "loaded")
    if p.get("pid"):
        state += f", pid {p['pid']}"
    env.say(f"{spec.label}: {state}; {path}")
    env.say(f"logs: {launchd_log_dir(env.home) / (spec.label + '.log')}")
    return 0 if p.get("state") == "running" else 1


# --------------------------------------------------------------------------- the verb


def spec_from_args(args: argparse.Namespace, interpreter: str | None = None) -> ServiceSpec:
    from spool.api import resolve_spool_path

    return ServiceSpec(
        interpreter=os.path.abspath(interpreter or sys.executable),
        spool=str(resolve_spool_path(args.spool)),
        flags=runner_flags(args),
        name=args.name,
    )


def cmd_service(args: argparse.Namespace, env: ServiceEnv | None = None) -> int:
    """`spool runner install|uninstall|status [--print]` (`run --print` means `install --print`)."""
    env = env or ServiceEnv.current()
    action = "install" if args.action == "run" else args.action
    if args.print_only and action != "install":
        raise UsageError("--print goes with install: spool runner install [options] --print")
    spec = spec_from_args(args)
    if action == "install":
        from runner.cli import build_options
        from runner.machine.policy import parse_hours

        build_options(args)  # the runner would refuse these options at start: refuse them now
        if args.hours is not None:
            parse_hours(args.hours)
        if args.print_only:
            if not (Path(spec.spool) / "spool.toml").exists():
                sys.stderr.write(
                    f"spool runner: warning: {spec.spool} is not a spool (yet) on this machine\n"
                )
            sys.stdout.write(render(spec, env))
            return 0
        from spool.api import Spool

        Spool(spec.spool).check()
        return install(spec, env)
    if action == "uninstall":
        return uninstall(spec, env)
    return status(spec, env)
