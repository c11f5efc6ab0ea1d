package org.cocoonjvm.billing.pricing;

/**
 * A token count or nanoTON amount did not fit in a {@code long}. Money never wraps: the request
 * cannot be priced, and the caller must refuse it rather than bill a wrong amount.
 */
public final class CostOverflowException extends ArithmeticException {
    CostOverflowException(String message) {
        super(message);
    }
}
