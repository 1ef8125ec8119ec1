# A ten-line echo server in Python's asyncio, as a user's own server (README: "Your server").
import asyncio

async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()

async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print("listening on %s:%d" % server.sockets[0].getsockname()[:2], flush=True)
    await server.serve_forever()

asyncio.run(main())
