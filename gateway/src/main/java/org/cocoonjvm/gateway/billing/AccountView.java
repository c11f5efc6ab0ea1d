package org.cocoonjvm.gateway.billing;

/**
 * An account as {@code GET /v1/account} shows it, in nanoTON.
 *
 * @param depositAddress the gateway's TON wallet to pay into; null if the gateway has none configured
 * @param depositComment the comment a transfer to that wallet must carry to be credited here
 */
public record AccountView(String accountId, long balanceNanoton, long reservedNanoton, long spentNanoton,
                          String depositAddress, String depositComment) {
    public long availableNanoton() {
        return balanceNanoton - reservedNanoton;
    }
}
