package org.cocoonjvm.attest.nvidia;

import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_CHAIN_INVALID;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_MALFORMED;
import static org.cocoonjvm.attest.nvidia.GpuVerificationException.Reason.RIM_SIGNATURE_INVALID;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.security.PublicKey;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import javax.xml.XMLConstants;
import javax.xml.crypto.MarshalException;
import javax.xml.crypto.dsig.Reference;
import javax.xml.crypto.dsig.XMLSignature;
import javax.xml.crypto.dsig.XMLSignatureException;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.crypto.dsig.dom.DOMValidateContext;
import javax.xml.crypto.dsig.keyinfo.X509Data;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXException;

/**
 * Verifies an NVIDIA RIM: a SWID tag (ISO 19770-2) with an enveloped XML signature (C14N 1.1,
 * SHA-384, ECDSA P-384), signed by a 4-certificate chain carried in {@code KeyInfo/X509Data}
 * (HCC RIM L4 Signer → Reference Value L3 → Reference Value CA → CoRIM signing Root CA) that must
 * end at the pinned root and be valid at {@code clock.instant()}.
 *
 * <p>The document is parsed with DOCTYPEs and external entities off, and the signature validated
 * with the JDK's secure validation on. Exactly one signature with exactly one reference to the
 * whole document ({@code URI=""}) is accepted, so no unsigned part of the tag is read as signed.
 * OCSP for the RIM chain needs the network and is not done here.
 */
public final class RimVerifier {
  static final String SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
  /** Namespace of the {@code Hash0..N} attributes: the XML Encryption SHA-384 algorithm URI. */
  static final String HASH_NS = "http://www.w3.org/2001/04/xmlenc#sha384";

  private final PinnedChain.Anchor rimAnchor;

  private RimVerifier(PinnedChain.Anchor rimAnchor) {
    this.rimAnchor = rimAnchor;
  }

  public static RimVerifier create(PublicKey pinnedRimRoot, Clock clock) {
    return new RimVerifier(PinnedChain.RIM.pinnedTo(pinnedRimRoot, clock));
  }

  /** Pins {@link NvidiaRoots#corimSigningRootCa()}. */
  public static RimVerifier create(Clock clock) {
    return create(NvidiaRoots.corimSigningRootCa().getPublicKey(), clock);
  }

  public VerifiedRim verify(byte[] swidTagXml) throws GpuVerificationException {
    Document doc = parseXml(swidTagXml);
    Element root = doc.getDocumentElement();
    if (!SWID_NS.equals(root.getNamespaceURI()) || !"SoftwareIdentity".equals(root.getLocalName())) {
      throw malformed("document element", "SoftwareIdentity in " + SWID_NS,
          root.getNamespaceURI() + " " + root.getLocalName());
    }
    NodeList sigs = doc.getElementsByTagNameNS(XMLSignature.XMLNS, "Signature");
    if (sigs.getLength() != 1) {
      throw malformed("signature elements", "1", String.valueOf(sigs.getLength()));
    }
    Element sigElement = (Element) sigs.item(0);
    if (sigElement.getParentNode() != root) {
      throw malformed("signature placement", "child of SoftwareIdentity (enveloped)",
          sigElement.getParentNode().getNodeName());
    }
    XMLSignatureFactory factory = XMLSignatureFactory.getInstance("DOM");
    XMLSignature signature;
    try {
      // First pass only reads SignedInfo and KeyInfo; the key that validates comes from the chain.
      signature = factory.unmarshalXMLSignature(secureContext(rimAnchor.rootKey(), sigElement));
    } catch (MarshalException e) {
      throw malformed("signature does not unmarshal: " + e.getMessage(), "XMLDSig", "unparseable");
    }
    List<?> refs = signature.getSignedInfo().getReferences();
    if (refs.size() != 1 || !"".equals(((Reference) refs.get(0)).getURI())) {
      throw new GpuVerificationException(RIM_SIGNATURE_INVALID,
          "signature must reference the whole document", "one Reference URI=\"\"",
          refs.size() + " references");
    }
    List<X509Certificate> chain = keyInfoChain(signature);
    X509Certificate signer = rimAnchor.verify(chain);

    DOMValidateContext ctx = secureContext(signer.getPublicKey(), sigElement);
    boolean valid;
    try {
      valid = factory.unmarshalXMLSignature(ctx).validate(ctx);
    } catch (MarshalException | XMLSignatureException e) {
      throw new GpuVerificationException(RIM_SIGNATURE_INVALID,
          "RIM signature cannot be validated: " + e.getMessage(), "valid XMLDSig",
          "validation error", e);
    }
    if (!valid) {
      throw new GpuVerificationException(RIM_SIGNATURE_INVALID,
          "RIM signature or digest does not verify with " + PinnedChain.subject(signer),
          "valid XMLDSig", "invalid");
    }
    return new VerifiedRim(colloquialVersion(root), root.getAttribute("tagId"),
        measurements(root), signer);
  }

  /** JDK secure validation: no SHA-1 or MD5, bounded transforms and references, no external URIs. */
  private static DOMValidateContext secureContext(java.security.Key key, Element signature) {
    DOMValidateContext ctx = new DOMValidateContext(key, signature);
    ctx.setProperty("org.jcp.xml.dsig.secureValidation", Boolean.TRUE);
    return ctx;
  }

  private static Document parseXml(byte[] xml) throws GpuVerificationException {
    try {
      DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
      f.setNamespaceAware(true);
      f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
      f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
      f.setXIncludeAware(false);
      f.setExpandEntityReferences(false);
      DocumentBuilder b = f.newDocumentBuilder();
      b.setErrorHandler(null);
      return b.parse(new ByteArrayInputStream(xml));
    } catch (ParserConfigurationException | SAXException | IOException e) {
      throw malformed("RIM is not well-formed XML: " + e.getMessage(), "XML", "unparseable");
    }
  }

  private static List<X509Certificate> keyInfoChain(XMLSignature signature)
      throws GpuVerificationException {
    List<X509Certificate> certs = new ArrayList<>();
    if (signature.getKeyInfo() != null) {
      for (Object content : signature.getKeyInfo().getContent()) {
        if (content instanceof X509Data data) {
          for (Object item : data.getContent()) {
            if (item instanceof X509Certificate c) certs.add(c);
          }
        }
      }
    }
    if (certs.isEmpty()) {
      throw new GpuVerificationException(RIM_CHAIN_INVALID, "RIM signature carries no certificates",
          "KeyInfo/X509Data with 4 certificates", "none");
    }
    return certs;
  }

  private static String colloquialVersion(Element root) throws GpuVerificationException {
    NodeList metas = root.getElementsByTagNameNS(SWID_NS, "Meta");
    if (metas.getLength() != 1) throw malformed("Meta elements", "1", String.valueOf(metas.getLength()));
    String v = ((Element) metas.item(0)).getAttribute("colloquialVersion");
    if (v.isEmpty()) throw malformed("Meta/@colloquialVersion", "a version", "absent");
    return v;
  }

  private static List<GoldenMeasurement> measurements(Element root) throws GpuVerificationException {
    NodeList resources = root.getElementsByTagNameNS(SWID_NS, "Resource");
    List<GoldenMeasurement> out = new ArrayList<>();
    boolean[] seen = new boolean[256];
    for (int i = 0; i < resources.getLength(); i++) {
      Element r = (Element) resources.item(i);
      if (!"Measurement".equals(r.getAttribute("type"))) continue;
      int index = intAttr(r, "index");
      if (index < 0 || index > 255 || seen[index]) {
        throw malformed("Measurement index out of range or repeated", "unique 0..255", String.valueOf(index));
      }
      seen[index] = true;
      int size = intAttr(r, "size");
      int count = intAttr(r, "alternatives");
      boolean active = switch (r.getAttribute("active").toLowerCase(Locale.ROOT)) {
        case "true" -> true;
        case "false" -> false;
        default -> throw malformed("Measurement " + index + " @active", "True or False",
            r.getAttribute("active"));
      };
      List<String> alternatives = new ArrayList<>();
      for (int h = 0; h < count; h++) {
        String hash = r.getAttributeNS(HASH_NS, "Hash" + h).toLowerCase(Locale.ROOT);
        if (hash.length() != 2 * size || !isHex(hash)) {
          throw malformed("Measurement " + index + " Hash" + h, size + " bytes of hex", hash);
        }
        alternatives.add(hash);
      }
      out.add(new GoldenMeasurement(index, active, size, alternatives));
    }
    if (out.isEmpty()) throw malformed("Measurement resources", "at least one", "none");
    return out;
  }

  private static int intAttr(Element e, String name) throws GpuVerificationException {
    try {
      return Integer.parseInt(e.getAttribute(name));
    } catch (NumberFormatException ex) {
      throw malformed("Measurement @" + name, "an integer", e.getAttribute(name));
    }
  }

  private static boolean isHex(String s) {
    try {
      HexFormat.of().parseHex(s);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  private static GpuVerificationException malformed(String detail, String expected, String actual) {
    return new GpuVerificationException(RIM_MALFORMED, detail, expected, actual);
  }
}
