"""``python -m agent.session.dialog``: the power-down warning as a person sees it, with its countdown
and a Postpone button; prints ``postpone`` if they press it.

The session helper starts it for the time a warning is on screen, so the window's toolkit costs the
helper nothing the rest of the time. tkinter draws it where Python has it (python.org's Windows and
macOS installers include it); without tkinter or a display, the OS's own dialog stands in (a message
box on Windows, ``osascript`` on macOS, a desktop notification with a Postpone action on Linux).
Closing the window, or the countdown running out, is not a postponement.
"""

from __future__ import annotations

import argparse
import sys

POSTPONE = "postpone"


def countdown_text(seconds: int) -> str:
    """ "4:05 left" ."""
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes}:{rest:02d} left"


class Window:
    """The tkinter window; ``answer`` is POSTPONE once the person presses the button."""

    def __init__(self, tk: object, title: str, message: str, seconds: int, postpone_label: str) -> None:
        self.answer = ""
        self._left = seconds
        self.root = tk.Tk()
        self.root.title(title)
        self.root.attributes("-topmost", True)
        self.root.resizable(False, False)
        frame = tk.Frame(self.root, padx=18, pady=14)
        frame.pack()
        tk.Label(frame, text=message, wraplength=380, justify="left").pack(anchor="w")
        self.clock = tk.Label(frame, text=countdown_text(seconds), font=("TkDefaultFont", 16, "bold"), pady=8)
        self.clock.pack()
        self.button = None
        if postpone_label:
            self.button = tk.Button(frame, text=postpone_label, command=self.postpone, default="active")
            self.button.pack(pady=(4, 0))
        self.root.after(1000, self._tick)

    def postpone(self) -> None:
        self.answer = POSTPONE
        self.root.destroy()

    def _tick(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self.root.destroy()
            return
        self.clock.configure(text=countdown_text(self._left))
        self.root.after(1000, self._tick)


def show(title: str, message: str, seconds: int, postpone_label: str) -> str:
    """The person's answer: POSTPONE or ""; raises RuntimeError where nothing can be shown."""
    try:
        import tkinter
    except ImportError:
        tkinter = None
    if tkinter is not None:
        try:
            window = Window(tkinter, title, message, seconds, postpone_label)
        except tkinter.TclError:  # no display to draw on
            pass
        else:
            window.root.mainloop()
            return window.answer
    from agent import platform

    answer = platform.session_side().native_dialog(title, message, seconds, postpone_label)
    if answer is None:
        raise RuntimeError("neither tkinter nor the system's own dialog can show a warning here")
    return POSTPONE if answer else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.session.dialog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--title", required=True)
    parser.add_argument("--message", required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--postpone-label", default="", help="the button's label; none: it cannot be postponed")
    args = parser.parse_args(argv)
    try:
        answer = show(args.title, args.message, args.seconds, args.postpone_label)
    except RuntimeError as exc:
        print(f"caretaker-agent dialog: {exc}", file=sys.stderr)
        return 3
    if answer:
        print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
