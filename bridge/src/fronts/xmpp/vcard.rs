//! Contacts' pictures on XMPP: the vCard a client asks a contact for (XEP-0054, its
//! `PHOTO`), and the photo's hash in the contact's presence (XEP-0153), which tells a
//! client to fetch the vCard again when it changes.

use sha1::{Digest, Sha1};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::vcard::{Binval, Photo, Type, VCard};
use xmpp_parsers::vcard_update::{Photo as PhotoHash, VCardUpdate};

use crate::model::Avatar;

/// A contact's vCard: the picture when there is one, else empty (XEP-0054: a vCard
/// with nothing in it is a valid answer).
pub fn contact_vcard(avatar: Option<&Avatar>) -> Element {
    VCard {
        photo: avatar.map(|a| Photo {
            type_: Type {
                data: a.mime.to_owned(),
            },
            binval: Binval {
                data: a.data.to_vec(),
            },
        }),
        payloads: Vec::new(),
    }
    .into()
}

/// XEP-0153's `<x xmlns='vcard-temp:x:update'><photo>…</photo></x>` for a presence:
/// the SHA-1 of the picture's bytes, in hex.
pub fn photo_update(avatar: &Avatar) -> Element {
    let hash: [u8; 20] = Sha1::digest(&avatar.data).into();
    VCardUpdate {
        photo: Some(PhotoHash { data: Some(hash) }),
    }
    .into()
}

/// The photo hash a user's presence announces (XEP-0153): `Some("")` for "no photo",
/// `None` when the presence says nothing about it.
pub fn announced_photo(payloads: &[Element]) -> Option<String> {
    let x = payloads.iter().find(|x| x.is("x", "vcard-temp:x:update"))?;
    let photo = x.get_child("photo", "vcard-temp:x:update")?;
    let hash = photo.text();
    // A hex SHA-1, or empty: anything else is not a hash to key a picture by.
    let hash = hash.trim();
    (hash.is_empty() || (hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())))
        .then(|| hash.to_ascii_lowercase())
}

/// The photo's bytes in a vCard (XEP-0054), if it holds a picture the bridge takes.
pub fn photo_of(vcard: Element, hash: &str) -> Option<Avatar> {
    let vcard = VCard::try_from(vcard).ok()?;
    Avatar::new(hash, vcard.photo?.binval.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fronts::xmpp::testing::assert_xml;

    #[test]
    fn the_vcard_and_the_presence_hash() {
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
        let avatar = Avatar::new("h", gif).unwrap();
        assert_xml(
            contact_vcard(Some(&avatar)),
            "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/gif</TYPE>\
               <BINVAL>R0lGODlhAQABAAAAADs=</BINVAL></PHOTO></vCard>",
        );
        assert_xml(contact_vcard(None), "<vCard xmlns='vcard-temp'/>");
        // XEP-0153: the hex SHA-1 of the image data (here checked with sha1sum).
        assert_xml(
            photo_update(&avatar),
            "<x xmlns='vcard-temp:x:update'><photo>383ed85131f4ed92dc15ebfe44585c7e14074264</photo></x>",
        );
        // The other way: a user's vCard and presence.
        let hash = "383ed85131f4ed92dc15ebfe44585c7e14074264";
        assert_eq!(
            photo_of(contact_vcard(Some(&avatar)), hash),
            Some(Avatar::new(hash, avatar.data.to_vec()).unwrap())
        );
        assert_eq!(photo_of(contact_vcard(None), hash), None);
        assert_eq!(
            announced_photo(&[photo_update(&avatar)]).as_deref(),
            Some(hash)
        );
        let parse = |xml: &str| announced_photo(&[xml.parse::<Element>().unwrap()]);
        assert_eq!(
            parse("<x xmlns='vcard-temp:x:update'><photo/></x>").as_deref(),
            Some("")
        );
        assert_eq!(parse("<x xmlns='vcard-temp:x:update'/>"), None);
        assert_eq!(
            parse("<x xmlns='vcard-temp:x:update'><photo>../etc</photo></x>"),
            None
        );
    }
}
