// Type tests of typed hub errors and the contract (`tsc --noEmit -p test/types`): a caught error
// narrows to the hub's error type through the generated guard, its variants by their tag; every
// line after a `@ts-expect-error` must be an error.

import {
  conformanceContract,
  isConformanceError,
  type ConformanceError,
  type ConformanceHub,
  type HubMethodError,
} from "../../../examples/conformance/client/index.js";
import { HubConnectionBuilder, HubError } from "@hubs/client";

export async function narrowing(hub: ConformanceHub): Promise<void> {
  try {
    await hub.bounded(9, 5);
  } catch (error) {
    // @ts-expect-error: an unknown caught value has no typed error before the guard
    error.error.kind;
    if (isConformanceError(error)) {
      const typed: HubMethodError<ConformanceError> = error;
      const base: HubError = error;
      const text: string = error.message;
      const type: string = error.type;
      if (error.error.kind === "OutOfRange") {
        const value: number = error.error.value;
        const max: number = error.error.max;
        // @ts-expect-error: `reason` belongs to the Refused variant
        error.error.reason;
      } else {
        const kind: "Refused" = error.error.kind;
        const reason: string = error.error.reason;
      }
      // @ts-expect-error: no such variant
      if (error.error.kind === "Overflow") {
      }
    }
  }
}

export function contract(): void {
  const hash: string = conformanceContract;
  const connection = new HubConnectionBuilder()
    .withUrl("http://localhost:5000/hub")
    .withContract(conformanceContract)
    .withInvocationHeaders(() => ({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }))
    .build();
  const server: string | undefined = connection.serverContract;
  // @ts-expect-error: the server's contract is read-only
  connection.serverContract = "x";
  // @ts-expect-error: headers are strings
  new HubConnectionBuilder().withInvocationHeaders(() => ({ traceparent: 1 }));
}
