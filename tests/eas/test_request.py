import base64
import struct

from twisted.trial.unittest import SynchronousTestCase

from bluesync.eas.request import RequestError, parse_request


def b64_query(version=141, command=0, locale=0x0409, device_id=b"\x01\x02\xab", policy=None, device_type=b"SmartPhone", params=()):
    data = bytes([version, command]) + struct.pack("<H", locale)
    data += bytes([len(device_id)]) + device_id
    if policy is None:
        data += b"\x00"
    else:
        data += b"\x04" + struct.pack("<I", policy)
    data += bytes([len(device_type)]) + device_type
    for tag, value in params:
        data += bytes([tag, len(value)]) + value
    return base64.b64encode(data)


class PlainQueryTests(SynchronousTestCase):
    def test_plain(self):
        """The plain form gives command, device, version and policy key."""
        request = parse_request(
            b"Cmd=Sync&User=alice&DeviceId=ABC123&DeviceType=iPhone",
            {"ms-asprotocolversion": "16.1", "x-ms-policykey": "3942919513", "user-agent": "Apple-iPhone/1"},
        )
        self.assertEqual(
            (request.command, request.user, request.device_id, request.device_type, request.version, request.policy_key),
            ("Sync", "alice", "ABC123", "iPhone", "16.1", 3942919513),
        )
        self.assertEqual(request.user_agent, "Apple-iPhone/1")

    def test_command_parameters(self):
        """SmartReply parameters and SaveInSent are read from the plain form."""
        request = parse_request(
            b"Cmd=SmartReply&User=a&DeviceId=D1&DeviceType=T&ItemId=5%3A12&CollectionId=5&SaveInSent=T",
            {"ms-asprotocolversion": "12.1"},
        )
        self.assertEqual(request.parameters, {"ItemId": "5:12", "CollectionId": "5"})
        self.assertTrue(request.save_in_sent)

    def test_errors(self):
        """Missing or malformed fields raise RequestError."""
        for query in (b"User=a&DeviceId=D&DeviceType=T", b"Cmd=Nope&DeviceId=D&DeviceType=T",
                      b"Cmd=Sync&DeviceId=D%20X&DeviceType=T", b"Cmd=Sync&DeviceId=D",
                      b"Cmd=Sync&Cmd=Ping&DeviceId=D&DeviceType=T"):
            self.assertRaises(RequestError, parse_request, query, {"ms-asprotocolversion": "14.1"})
        self.assertRaises(RequestError, parse_request, b"Cmd=Sync&DeviceId=D&DeviceType=T", {"ms-asprotocolversion": "15.0"})
        self.assertRaises(RequestError, parse_request, b"Cmd=Sync&DeviceId=D&DeviceType=T", {"ms-asprotocolversion": "14.1", "x-ms-policykey": "abc"})


class Base64QueryTests(SynchronousTestCase):
    def test_base64(self):
        """The base64 form decodes version, command, locale, device, policy key and type."""
        request = parse_request(b64_query(policy=1234, params=[(7, b"\x01"), (8, b"alice")]), {})
        self.assertEqual(request.version, "14.1")
        self.assertEqual(request.command, "Sync")
        self.assertEqual(request.locale, 0x0409)
        self.assertEqual(request.device_id, "0102AB")
        self.assertEqual(request.policy_key, 1234)
        self.assertEqual(request.device_type, "SmartPhone")
        self.assertEqual(request.user, "alice")
        self.assertTrue(request.save_in_sent)

    def test_parameters(self):
        """Command parameters and the AcceptMultiPart option come through."""
        request = parse_request(b64_query(command=19, params=[(1, b"5"), (3, b"5:1"), (7, b"\x02")]), {})
        self.assertEqual(request.command, "ItemOperations")
        self.assertEqual(request.parameters, {"CollectionId": "5", "ItemId": "5:1"})
        self.assertTrue(request.accept_multipart)
        self.assertFalse(request.save_in_sent)

    def test_malformed(self):
        """Truncated or invalid base64 queries raise RequestError."""
        good = base64.b64decode(b64_query())
        for cut in range(len(good)):
            encoded = base64.b64encode(good[:cut])
            self.assertRaises(RequestError, parse_request, encoded, {})
        self.assertRaises(RequestError, parse_request, b64_query(version=99), {})
        self.assertRaises(RequestError, parse_request, b64_query(command=77), {})
        self.assertRaises(RequestError, parse_request, b64_query(params=[(2, b"x")]), {})
        self.assertRaises(RequestError, parse_request, b"!!notbase64!!", {})
