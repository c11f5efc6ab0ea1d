package org.cocoonjvm.attest.dcap;

import java.util.List;

/**
 * The converged TCB status of a verified quote and the union of advisory IDs of the platform,
 * TDX module and QE levels that matched (sorted).
 */
public record TcbVerdict(TcbStatus status, List<String> advisories, TcbStatus platform, TcbStatus qe) {
  public TcbVerdict {
    advisories = List.copyOf(advisories);
  }
}
