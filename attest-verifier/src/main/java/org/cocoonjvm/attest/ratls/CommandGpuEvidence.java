package org.cocoonjvm.attest.ratls;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.cocoonjvm.attest.nvidia.GpuNonce;

/**
 * GPU evidence from an operator's command ({@code --gpu-evidence-command}): run by {@code /bin/sh -c}
 * with the nonce, {@link GpuNonce#forTlsPublicKey} of the new key as 64 hex digits, appended as its
 * last argument; it must exit 0 within the timeout and print one JSON object
 * {@code {"evidence": "<hex or base64 SPDM request ‖ response>", "certificate_chain": "<PEM>"}},
 * what an nvtrust script can emit after asking the GPU for signed measurements with that nonce.
 * Runs at every certificate rotation, since the nonce follows the key.
 */
public final class CommandGpuEvidence implements RaTlsIdentity.GpuEvidence {
  private final String command;
  private final Duration timeout;

  public CommandGpuEvidence(String command, Duration timeout) {
    this.command = Objects.requireNonNull(command, "command");
    this.timeout = Objects.requireNonNull(timeout, "timeout");
    if (command.isBlank()) throw new IllegalArgumentException("empty GPU evidence command");
  }

  @Override
  public Optional<byte[]> evidenceFor(byte[] rawTlsPublicKey) throws IOException {
    String nonce = HexFormat.of().formatHex(GpuNonce.forTlsPublicKey(rawTlsPublicKey));
    // "$1" keeps the command free to be a pipeline; the nonce is passed as data, never as shell text.
    Process p = new ProcessBuilder("/bin/sh", "-c", command + " \"$1\"", "sh", nonce)
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    p.getOutputStream().close();
    CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> {
      try {
        return p.getInputStream().readAllBytes();
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    });
    try {
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        throw new IOException("GPU evidence command did not finish within " + timeout + ": " + command);
      }
      if (p.exitValue() != 0) throw new IOException("GPU evidence command exited " + p.exitValue() + ": " + command);
      String json = new String(out.get(timeout.toMillis(), TimeUnit.MILLISECONDS), StandardCharsets.UTF_8);
      return Optional.of(GpuEvidenceExtension.fromJson(new JsonObject(json.strip()), true).encode());
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while waiting for the GPU evidence command", e);
    } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
      throw new IOException("cannot read the GPU evidence command's output: " + e.getMessage(), e);
    } catch (DecodeException | IllegalArgumentException e) {
      throw new IOException("GPU evidence command printed no valid JSON: " + e.getMessage(), e);
    }
  }
}
