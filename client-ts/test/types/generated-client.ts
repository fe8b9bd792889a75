// Type tests of a generated client (the conformance hub's, examples/conformance/client), compiled
// with `tsc --noEmit -p test/types`: the calls below must type-check, and every line after a
// `@ts-expect-error` must be an error — wrong method names, arity, argument and result types,
// handler signatures — or tsc fails because the expected error is missing.

import {
  connectConformance,
  createConformance,
  conformanceRoute,
  type ConformanceClient,
  type ConformanceConnection,
  type ConformanceHub,
  type JsonValue,
} from "../../../examples/conformance/client/index.js";

const route: "/hub" = conformanceRoute;

export async function typedHub(hub: ConformanceHub): Promise<void> {
  const echoed: string = await hub.echo("hi");
  const sum: number = await hub.add(1, 2);
  const abort = new AbortController();
  const slept: number = await hub.sleep(10, abort.signal);
  for await (const n of hub.counter(3, 0)) {
    const item: number = n;
  }
  const total: number = await hub.sum((async function* () {
    yield 1;
  })());
  const user: string | null = await hub.userId();
  const log: Array<[string, string | null]> = await hub.disconnections();

  // @ts-expect-error: an argument of the wrong type
  await hub.add("1", 2);
  // @ts-expect-error: a missing argument
  await hub.add(1);
  // @ts-expect-error: the result is a number, not a string
  const notString: string = await hub.add(1, 2);
  // @ts-expect-error: upload items are numbers
  await hub.sum((async function* () {
    yield "x";
  })());
  // @ts-expect-error: no such method
  await hub.ech("hi");
}

export async function typedPlainCalls(connection: ConformanceConnection): Promise<void> {
  const id: string = await connection.invoke("ConnectionId");
  const added: number = await connection.invoke("Add", 1, 2);
  const abort = new AbortController();
  await connection.invoke("Add", 1, 2, abort.signal);
  await connection.send("SendToAll", "everyone");
  for await (const n of connection.stream("Counter", 3, 0)) {
    const item: number = n;
  }
  connection.on("Receive", (label, text) => {
    const both: string = label + text;
  });
  connection.on("GetAnswer", (question: string): JsonValue => ({ question }));

  // @ts-expect-error: a method name that does not exist
  await connection.invoke("Ech", "hi");
  // @ts-expect-error: wrong arity (too few)
  await connection.invoke("Add", 1);
  // @ts-expect-error: wrong arity (too many)
  await connection.invoke("Echo", "a", "b");
  // @ts-expect-error: an argument of the wrong type
  await connection.invoke("Add", 1, "2");
  // @ts-expect-error: the result type is checked
  const notNumber: number = await connection.invoke("Echo", "hi");
  // @ts-expect-error: streaming methods are called with stream(), not invoke()
  await connection.invoke("Counter", 3, 0);
  // @ts-expect-error: unary methods are called with invoke(), not stream()
  connection.stream("Echo", "hi");
  // @ts-expect-error: a handler's parameter types are checked
  connection.on("Item", (index: string) => {});
  // @ts-expect-error: a callback name that does not exist
  connection.on("Recieve", () => {});
  // @ts-expect-error: a client result must answer with the declared type
  connection.on("GetAnswer", (question: string) => () => {});
}

export async function receivers(): Promise<void> {
  const client: ConformanceClient = {
    receive(label, text) {
      const both: string = label + text;
    },
    item(index) {
      const n: number = index;
    },
    tickerCancelled() {},
    getAnswer: async (question) => question.length,
  };
  const hub = createConformance("http://localhost:5000", { client });
  const unregister: () => void = hub.register({ item: (index) => {} });
  unregister();
  const started: ConformanceHub = await connectConformance("http://localhost:5000", {
    configure: (builder) => builder.withAutomaticReconnect(),
  });

  // @ts-expect-error: a receiver's callback parameters are checked
  hub.register({ item: (index: string) => {} });
  // @ts-expect-error: connect takes a base URL string
  await connectConformance(5000);
}
