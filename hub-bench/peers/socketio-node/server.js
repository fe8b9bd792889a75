// Socket.IO 4.8 peer for hub-bench: `echo` (acked), `join` (acked) and `send` → `recv` to the
// room; WebSocket transport only, compression off. Listens on 127.0.0.1:$PORT.
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

const server = http.createServer();
const io = new Server(server, {
  transports: ["websocket"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});
io.on("connection", (socket) => {
  socket.on("echo", (text, ack) => ack(text));
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack();
  });
  socket.on("send", (room, seq, text) => {
    io.to(room).emit("recv", seq, text);
  });
});
server.listen(Number(process.env.PORT), "127.0.0.1");
