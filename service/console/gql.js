// The console's GraphQL client: queries and mutations over HTTP, subscriptions over a
// websocket speaking graphql-transport-ws. It knows nothing about the screens.

/** A GraphQL error the server returned; `code` is its extensions.code when it has one. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code || "ERROR";
  }
}

/** The codes that mean "your token no longer works": the console shows the sign-in again. */
export const SIGNED_OUT_CODES = new Set(["UNAUTHENTICATED"]);

export class Api {
  /**
   * @param {string} url the GraphQL endpoint (e.g. "/graphql")
   * @param {() => string | null} token the current bearer token
   * @param {(reason: string) => void} onSignedOut called when the server refuses the token
   */
  constructor(url, token, onSignedOut) {
    this.url = url;
    this.token = token;
    this.onSignedOut = onSignedOut;
  }

  /** The `data` of one operation; throws ApiError for a top-level error. */
  async request(query, variables = {}) {
    let response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/graphql-response+json, application/json",
          Authorization: `Bearer ${this.token() || ""}`,
        },
        body: JSON.stringify({ query, variables }),
      });
    } catch (error) {
      throw new ApiError(`segport does not answer (${error.message}).`, "NETWORK");
    }
    let body;
    try {
      body = await response.json();
    } catch {
      throw new ApiError(`segport answered HTTP ${response.status} without GraphQL.`, "HTTP");
    }
    const errors = body.errors || [];
    if (errors.length) {
      const first = errors[0];
      const code = (first.extensions && first.extensions.code) || "ERROR";
      if (SIGNED_OUT_CODES.has(code)) this.onSignedOut(first.message);
      throw new ApiError(first.message, code);
    }
    return body.data;
  }

  /** The websocket URL next to the HTTP endpoint. */
  socketUrl() {
    const url = new URL(this.url, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.toString();
  }

  /**
   * Subscribe over graphql-transport-ws. `on.next(data)`, `on.error(ApiError)`,
   * `on.complete()`. Returns a function that stops the subscription.
   */
  subscribe(query, variables, on) {
    const socket = new TransportSocket(this.socketUrl(), this.token() || "");
    const id = "1";
    let finished = false;
    const finish = () => {
      finished = true;
      socket.close();
    };
    socket.onMessage = (message) => {
      if (message.type === "connection_ack") {
        socket.send({ id, type: "subscribe", payload: { query, variables } });
      } else if (message.type === "ping") {
        socket.send({ type: "pong" });
      } else if (message.type === "next" && message.id === id) {
        const errors = message.payload.errors || [];
        if (errors.length) {
          const code = (errors[0].extensions && errors[0].extensions.code) || "ERROR";
          if (SIGNED_OUT_CODES.has(code)) this.onSignedOut(errors[0].message);
          on.error(new ApiError(errors[0].message, code));
        } else {
          on.next(message.payload.data);
        }
      } else if (message.type === "error" && message.id === id) {
        const first = (message.payload || [])[0] || { message: "subscription refused" };
        const code = (first.extensions && first.extensions.code) || "ERROR";
        if (SIGNED_OUT_CODES.has(code)) this.onSignedOut(first.message);
        finish();
        on.error(new ApiError(first.message, code));
      } else if (message.type === "complete" && message.id === id) {
        finish();
        on.complete();
      }
    };
    socket.onClose = (event) => {
      if (finished) return;
      finished = true;
      // 4403: the server refused connection_init (the token); see the protocol.
      if (event.code === 4403 || event.code === 4401) {
        this.onSignedOut("the live connection was refused: sign in again");
      }
      on.error(new ApiError(`live updates stopped (${event.reason || event.code}).`, "CLOSED"));
    };
    return () => {
      if (!finished) {
        socket.send({ id, type: "complete" });
        finish();
      }
    };
  }
}

/** One websocket speaking graphql-transport-ws: connection_init first, JSON messages. */
class TransportSocket {
  constructor(url, token) {
    this.onMessage = () => {};
    this.onClose = () => {};
    this.ws = new WebSocket(url, "graphql-transport-ws");
    this.ws.addEventListener("open", () => {
      this.send({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } });
    });
    this.ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    this.ws.addEventListener("close", (event) => this.onClose(event));
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  close() {
    if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, "done");
  }
}
