"""A TCP proxy that adds latency: each chunk is forwarded D ms after it arrived, in order, both ways.

Usage: python bench/latency_proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_MS

It models a relay tens of milliseconds away (an ESP, a company smarthost): a round trip
costs 2 × ONE_WAY_MS; bandwidth is not limited. Bytes keep their order per direction.
"""

import asyncio
import socket
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    pending: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await pending.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            pending.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    pending.put_nowait((loop.time() + delay, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def _serve(listen_port: int, target_port: int, delay: float) -> None:
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, server_writer):  # forward each delayed chunk as it is due
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(_pump(client_reader, server_writer, delay), _pump(server_reader, client_writer, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000))
