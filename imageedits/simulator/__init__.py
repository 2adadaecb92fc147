"""An offline stand-in for the images edits API (Ace Data Cloud or OpenAI flavour).

Start it in tests with `SimulatorServer(port=0).start()`, or on its own with
`python -m imageedits.simulator`. No Django here: it only shares the model catalog with the app.
"""

from imageedits.simulator.server import SimulatorConfig, SimulatorServer

__all__ = ["SimulatorConfig", "SimulatorServer"]
