"""An offline stand-in for the images edits API (Ace Data Cloud or OpenAI flavour).

Start it in tests with `SimulatorServer(port=0).start()`, or on its own with
`python -m imageedits.simulator`. No Django here, and nothing of the app: the rules it judges
requests by are its own (rules.py).
"""

from imageedits.simulator.server import SimulatorServer

__all__ = ["SimulatorServer"]
