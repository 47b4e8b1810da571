from socialcredit.cli import entry

entry()
