"""An edge node built on another Sparkplug implementation (pysparkplug 0.6.1), as an independent peer
of Batchline's host. It needs paho-mqtt 1.x, so it runs in its own virtual environment
(tests/gateway/test_sparkplug_peer.py says which) and imports nothing of Batchline's.

Usage: ``python pysparkplug_peer.py PORT GROUP EDGE``; prints ``born`` once its births are out, then
reads commands from stdin, one a line: ``data`` (an NDATA and a DDATA), ``quit`` (a clean stop).
"""

import sys
import time

import pysparkplug as spb


def main() -> None:
    port, group, edge = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    node = spb.EdgeNode(
        group,
        edge,
        [
            spb.Metric(
                timestamp=spb.get_current_timestamp(), name="Speed", datatype=spb.DataType.DOUBLE, value=12.5
            )
        ],
    )
    node.register(
        spb.Device(
            "Press",
            [
                spb.Metric(
                    timestamp=spb.get_current_timestamp(),
                    name="Force",
                    datatype=spb.DataType.FLOAT,
                    value=8.25,
                ),
                spb.Metric(
                    timestamp=spb.get_current_timestamp(),
                    name="Running",
                    datatype=spb.DataType.BOOLEAN,
                    value=True,
                ),
            ],
        )
    )
    node.connect("127.0.0.1", port=port, blocking=False)
    while not node._connected:  # pysparkplug offers no other way to wait for its births
        time.sleep(0.01)
    print("born", flush=True)
    for line in sys.stdin:
        if line.strip() == "data":
            now = spb.get_current_timestamp()
            node.update([spb.Metric(timestamp=now, name="Speed", datatype=spb.DataType.DOUBLE, value=13.0)])
            node.update_device(
                "Press", [spb.Metric(timestamp=now, name="Force", datatype=spb.DataType.FLOAT, value=9.5)]
            )
            print("sent", flush=True)
        elif line.strip() == "quit":
            node.disconnect()
            return


if __name__ == "__main__":
    main()
