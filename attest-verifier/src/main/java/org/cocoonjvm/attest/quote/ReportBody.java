package org.cocoonjvm.attest.quote;

/** The report a quote signs: a TD report (TDX) or an enclave report (SGX). */
public sealed interface ReportBody permits TdReportBody, EnclaveReportBody {
  BodyType type();

  /** 64 bytes the attested software chose; binds the quote to e.g. a TLS key. */
  Blob reportData();
}
