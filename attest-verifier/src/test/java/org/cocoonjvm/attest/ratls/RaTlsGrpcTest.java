package org.cocoonjvm.attest.ratls;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import io.vertx.grpc.server.GrpcServer;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.cocoonjvm.attest.tee.DevTee;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** RA-TLS under a Vert.x gRPC server and client over HTTP/2 with ALPN, as gateway ↔ worker will use it. */
class RaTlsGrpcTest {
  static final ServiceName SERVICE = ServiceName.create("cocoon.test", "Echo");

  Vertx vertx;
  int port;
  final List<RaTlsTrustManager.Outcome> serverSaw = new CopyOnWriteArrayList<>();

  @BeforeEach
  void start() throws Exception {
    vertx = Vertx.vertx();
    GrpcServer grpc = GrpcServer.server(vertx).callHandler(
        ServiceMethod.server(SERVICE, "Echo", GrpcMessageEncoder.IDENTITY, GrpcMessageDecoder.IDENTITY),
        req -> req.handler(msg -> req.response().end(Buffer.buffer("echo:").appendBuffer(msg))));
    HttpServerOptions opts = RaTlsVertx.server(new HttpServerOptions().setHost("127.0.0.1").setPort(0).setUseAlpn(true),
        new RaTlsKeyManager(RaTlsIdentity.create(RaTlsHandshakeTest.TEE, RaTlsHandshakeTest.CLOCK)),
        new RaTlsTrustManager(RaTlsHandshakeTest.verifier(RaTlsHandshakeTest.CLOCK), serverSaw::add));
    port = RaTlsHandshakeTest.await(vertx.createHttpServer(opts).requestHandler(grpc).listen()).actualPort();
  }

  @AfterEach
  void stop() throws Exception {
    RaTlsHandshakeTest.await(vertx.close());
  }

  String call(DevTee clientTee) throws Exception {
    HttpClientOptions opts = RaTlsVertx.client(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setUseAlpn(true),
        new RaTlsKeyManager(RaTlsIdentity.create(clientTee, RaTlsHandshakeTest.CLOCK)),
        new RaTlsTrustManager(RaTlsHandshakeTest.verifier(RaTlsHandshakeTest.CLOCK)));
    GrpcClient client = GrpcClient.client(vertx, opts);
    try {
      return RaTlsHandshakeTest.await(ClientChains.onContext(vertx, () -> client.request(SocketAddress.inetSocketAddress(port, "127.0.0.1"),
              ServiceMethod.client(SERVICE, "Echo", GrpcMessageEncoder.IDENTITY, GrpcMessageDecoder.IDENTITY))
          .compose(req -> req.send(Buffer.buffer("hi")).compose(resp -> resp.last())))).toString();
    } finally {
      RaTlsHandshakeTest.await(client.close());
    }
  }

  @Test
  void unaryCallOverMutualRaTls() throws Exception {
    assertThat(call(RaTlsHandshakeTest.TEE)).isEqualTo("echo:hi");
    assertThat(serverSaw).singleElement().satisfies(o -> assertThat(o.accepted()).isTrue());
  }

  @Test
  void workerOutsidePolicyNeverReachesTheService() throws Exception {
    assertThatThrownBy(() -> call(RaTlsHandshakeTest.OTHER_IMAGE)).isNotNull();
    assertThat(serverSaw).singleElement().satisfies(o -> assertThat(o.refusal().reason())
        .isEqualTo(RaTlsException.Reason.ATTESTATION_REJECTED));
  }
}
