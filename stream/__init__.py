"""polypwatch streaming side, the upper layer (it imports ``engines``, never the reverse).

Operating room: capture (``sources``, ``reader``), the loop (``pipeline``, ``alerts``, ``stats``), the wire
(``wire``, ``publisher``, ``security``, ``endpoints``), the overlay process (``overlay/``), configuration and
the command line. Lab: replay QA (``qa/``) and benchmarks (``bench/``)."""
