package org.cocoonjvm.attest.ratls;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A loopback port for clients that speak plain HTTP (any OpenAI SDK, curl, a gRPC backend), each
 * of whose connections it carries to an attested gateway over TLS, verifying the certificate the
 * gateway presents on that very connection: its quote must bind the connection's key and pass
 * the policy. Fetching {@code /v1/attestation} and sending the prompt on another connection
 * proves nothing about where the prompt goes; this does, connection by connection (Cocoon's
 * client runner plays the same part). Runs on the client's own machine, which it trusts.
 *
 * <p>Bytes are copied, not parsed. A connection that opens with the HTTP/2 preface (gRPC) is
 * carried on a TLS connection that negotiated {@code h2}; any other on one that negotiated
 * {@code http/1.1}. When the gateway's certificate is refused, an HTTP/1 client gets a 502 whose
 * JSON error says why, in the OpenAI shape; an HTTP/2 client has its connection closed.
 *
 * <p>A carried connection may live for days (a gRPC backend, HTTP/1 keep-alive): its gateway is
 * verified again on it whenever its verification is due ({@link PeerWatch}, as on the gateway's
 * own links), and once it no longer passes, both sides of the connection are closed at once (bytes
 * are not parsed, so there is no request boundary to wait for) and its TLS session is not resumed.
 */
public final class RaTlsClientProxy {
  private static final Logger LOG = LoggerFactory.getLogger(RaTlsClientProxy.class);
  private static final byte[] H2_PREFACE_START = "PRI ".getBytes(StandardCharsets.US_ASCII);

  private final Vertx vertx;
  private final RaTlsVerifier verifier;
  private final SocketAddress gateway;
  private final NetClient http1;
  private final NetClient h2;
  private NetServer server;

  /** @param verifier checks the gateway's certificate against the client's gateway policy */
  public RaTlsClientProxy(Vertx vertx, RaTlsVerifier verifier, SocketAddress gateway) {
    this.vertx = Objects.requireNonNull(vertx, "vertx");
    this.verifier = Objects.requireNonNull(verifier, "verifier");
    this.gateway = Objects.requireNonNull(gateway, "gateway");
    this.http1 = vertx.createNetClient(client("http/1.1"));
    this.h2 = vertx.createNetClient(client("h2"));
  }

  private NetClientOptions client(String protocol) {
    NetClientOptions options = RaTlsVertx.verifyingClient(new NetClientOptions(), new RaTlsTrustManager(verifier));
    return options.setUseAlpn(true).setApplicationLayerProtocols(List.of(protocol));
  }

  /** Listens on {@code host:port} (0: a free one); completes with the bound port. */
  public Future<Integer> listen(String host, int port) {
    server = vertx.createNetServer(new NetServerOptions().setHost(host).setPort(port)).connectHandler(this::carry);
    return server.listen().map(NetServer::actualPort);
  }

  public Future<Void> close() {
    Future<Void> closed = server == null ? Future.succeededFuture() : server.close();
    return closed.eventually(http1::close).eventually(h2::close);
  }

  private void carry(NetSocket local) {
    Buffer head = Buffer.buffer();
    boolean[] gone = {false};
    local.closeHandler(v -> gone[0] = true);
    local.handler(data -> {
      head.appendBuffer(data);
      if (head.length() < H2_PREFACE_START.length && mayBePreface(head)) {
        return;  // too short to tell yet
      }
      local.pause();
      local.handler(null);
      boolean grpc = head.length() >= H2_PREFACE_START.length && mayBePreface(head);
      (grpc ? h2 : http1).connect(gateway).onComplete(connected -> {
        if (connected.failed()) {
          refused(local, grpc, connected.cause());
          return;
        }
        NetSocket remote = connected.result();
        if (gone[0]) {
          remote.close();  // the client left while this connected: no pipe would ever end this one
          return;
        }
        RaTlsPeer peer;
        try {
          // A resumed TLS session skips the trust manager: each connection is checked here too (a cache hit).
          peer = verifier.verify(remote.sslSession());
        } catch (RaTlsException e) {
          // Resumed, it would be refused again with the same certificate until the JDK's cache dropped it.
          remote.sslSession().invalidate();
          remote.close();
          refused(local, grpc, e);
          return;
        }
        PeerWatch watch = PeerWatch.start(vertx, verifier, remote.sslSession(), peer, failure -> {
          LOG.warn("the gateway at {} no longer passes this client's policy, its connection from {} closed: {}", gateway,
              local.remoteAddress(), failure.getMessage());
          remote.close();
          local.close();
        });
        remote.closeHandler(v -> watch.cancel());
        remote.write(head);
        local.pipeTo(remote);
        remote.pipeTo(local);
      });
    });
  }

  private void refused(NetSocket local, boolean grpc, Throwable cause) {
    String why = refusal(cause)
        .map(r -> "the gateway at " + gateway + " was refused: its certificate does not pass this client's policy: " + r)
        .orElse("the gateway at " + gateway + " could not be reached over RA-TLS: " + cause.getMessage());
    LOG.warn("{}", why);
    if (grpc) {
      local.close();
      return;
    }
    String body = new JsonObject().put("error", new JsonObject().put("message", why).put("type", "attestation_error")
        .put("param", (String) null).put("code", "gateway_not_attested")).encode();
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    local.end(Buffer.buffer("HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: " + bytes.length
        + "\r\nconnection: close\r\n\r\n").appendBytes(bytes));
  }

  /** The trust manager's refusal, somewhere under the failed handshake; empty for another failure. */
  private static Optional<String> refusal(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof RaTlsException e) {
        return Optional.of(e.getMessage());
      }
    }
    return Optional.empty();
  }

  /** Whether the bytes {@code data} has (up to four) are those the HTTP/2 preface starts with. */
  private static boolean mayBePreface(Buffer data) {
    for (int i = 0; i < Math.min(H2_PREFACE_START.length, data.length()); i++) {
      if (data.getByte(i) != H2_PREFACE_START[i]) {
        return false;
      }
    }
    return true;
  }
}
