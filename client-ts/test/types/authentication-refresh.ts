// Type tests of authentication refresh (`tsc --noEmit -p test/types`): the builder option, the
// connection's method and events, and the exported option/context types.

import {
  HubConnectionBuilder,
  type AuthenticationRefreshFailedContext,
  type AuthenticationRefreshOptions,
  type AuthenticationRefreshedContext,
  type HubConnection,
} from "@hubs/client";

export async function authenticationRefresh(): Promise<void> {
  const options: AuthenticationRefreshOptions = { enableAutoRefresh: false, refreshBeforeExpirationInMilliseconds: 60_000 };
  const hub: HubConnection = new HubConnectionBuilder()
    .withUrl("http://localhost:5000/hub", { accessTokenFactory: () => "token" })
    .withAuthenticationRefresh()
    .withAuthenticationRefresh(options)
    .withAutomaticReconnect()
    .build();
  const lifetime: number | undefined = await hub.refreshAuthentication();
  hub.onAuthenticationRefreshed((context: AuthenticationRefreshedContext) => {
    const connection: HubConnection = context.connection;
    const seconds: number | undefined = context.newTokenLifetimeInSeconds;
    const at: Date = context.refreshedAt;
  });
  hub.onAuthenticationRefreshFailed((context: AuthenticationRefreshFailedContext) => {
    const connection: HubConnection = context.connection;
    const error: Error = context.error;
  });

  // @ts-expect-error: the lead is a number of milliseconds
  new HubConnectionBuilder().withAuthenticationRefresh({ refreshBeforeExpirationInMilliseconds: "5" });
  // @ts-expect-error: no such option
  new HubConnectionBuilder().withAuthenticationRefresh({ autoRefresh: true });
  // @ts-expect-error: the lifetime may be undefined
  const seconds: number = await hub.refreshAuthentication();
  // @ts-expect-error: a failure's context has no lifetime
  hub.onAuthenticationRefreshFailed((context) => context.newTokenLifetimeInSeconds);
}
