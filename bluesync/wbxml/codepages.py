"""
The code pages of MS-ASWBXML: which token stands for which element.

This module is data.  Each page is written as a small table, one line per
tag: the token in hex, the element name as it appears in EAS XML, the
protocol versions that know it, and optional C{opaque} and C{alias} flags.
The tables are parsed once at import into L{Tag} objects and the lookup
dictionaries the codec uses.

Version notation in the tables:

    all         every version (2.5, 12.0, 12.1, 14.0, 14.1, 16.0, 16.1)
    12.0+       that version and every later one
    -14.1       every version up to and including that one
    2.5         only that version (several may be listed: "12.0,12.1")
    none        the token is defined but no protocol version uses it
                (code page 3, AirNotify, which the specification keeps
                only as reserved, and Ping's AutdState, which MS-ASWBXML
                lists as not used by the protocol)

Names follow the XML element names of MS-ASCMD and the content-class
specifications (MS-ASEMAIL, MS-ASCAL, ...).  Where another source spells a
token differently from the element it encodes, the element name is the
primary name (what the decoder produces) and the other spelling is an
alias the encoder also accepts:

    Email 0x3B      Status (MS-ASEMAIL 2.2.2.74, Microsoft's test suite);
                    alias FlagStatus (Z-Push, libwbxml, older bluesync)
    Calendar 0x05   Timezone (MS-ASCAL Calendar.xsd, the test suite);
                    alias TimeZone (older bluesync)
    ComposeMail     Name, Email (MS-ASCMD 2.2.3.120.3, 2.2.3.53); aliases
      0x17, 0x18    ForwardeeName, ForwardeeEmail (the test suite's table)
    Find 0x19       GALSearchCriterion (MS-ASCMD 2.2.3.82, the test suite);
                    alias GalSearchCriterion (the MS-ASWBXML 2.1.2.1.26 row)
    Provision 0x10  RequireStorageCardEncryption (12.1+); alias
                    DeviceEncryptionEnabled, its 12.0 name

Provision 0x12 (Z-Push's DocumentBrowseEnabled) is not defined: neither
Microsoft's test suite nor MS-ASPROV's EASProvisionDoc (2.2.2.28) has it.

Page 6 is the GetItemEstimate namespace: MS-ASWBXML titles the page
"ItemEstimate", but MS-ASCMD defines its elements "in the GetItemEstimate
namespace" (2.2.3.29.1, 6.20, 6.21), and XML namespaces are what this
module names.

Opaque tags are those whose content the specifications define as a byte
array ([MS-ASDTYPE] 2.7.1) carried as WBXML OPAQUE: the conversation id and
index, the MIME of SendMail/SmartReply/SmartForward and the content of an
attachment added by a 16.x client.

Sources, page by page (cross-checked token by token for issue 3; the
golden listing tests/wbxml/data/codepages.txt pins the result):

  - MS-ASWBXML itself, every row with its versions: 10 ResolveRecipients
    (2.1.2.1.11), 11 ValidateCert (2.1.2.1.12), 12 Contacts2 (2.1.2.1.13),
    25 Find (2.1.2.1.26).  The other MS-ASWBXML pages could not be reached.
  - Microsoft's protocol test suite (OfficeDev/Interop-TestSuites,
    ExchangeActiveSync/Source/MS-ASWBXML/MS-ASWBXML.cs, which carries all
    26 pages as data): every name and token of pages 0-2 and 4-25.  It
    leaves out the tokens only 2.5 uses (AirSync Truncation; Contacts
    Body, BodySize, BodyTruncated, CompressedRTF; Email 0x05-0x0E, 0x10,
    0x36-0x38; Calendar Body, BodyTruncated, CompressedRTF; Tasks Body,
    BodySize, BodyTruncated, CompressedRTF), GetItemEstimate Version and
    DateTime (12.1 only) and Ping AutdState (not used).  Those rows keep
    the original transcription (Z-Push, libwbxml); the content-class
    specifications confirm the 2.5 elements.  The test suite has no
    AirNotify rows either: page 3's tokens are libwbxml's, and no version
    uses them.
  - Versions: the MS-ASWBXML pages above; elsewhere the "Protocol
    Versions" table of the element's own section, where one was checked:
    MS-ASCMD 2.2.3.129.4 and 6.19 (FolderHierarchy Folders and Folder,
    GetHierarchy only: 2.5-12.1), 2.2.3.51.1 (ItemOperations DstFldId,
    14.0+), 2.2.3.53 and 2.2.3.78 (ComposeMail Email, Forwardee, 16.0+);
    MS-ASPROV 2.2.2.13, 2.2.2.46, 2.2.2.52 (12.1+ policies); MS-ASEMAIL
    2.2.2.74 (Status, 12.0+), 2.2.2.17 (Category, 14.0+), 2.2.2.4.2,
    2.2.2.51, 2.2.2.52 (Attachments, MIMESize, MIMETruncated: 2.5);
    MS-ASCNTC 2.2.2.9 (BodyTruncated, 2.5), 2.2.2.58 (Picture, all);
    MS-ASRM 2.2.2.14, 2.2.2.17-2.2.2.20 and MS-ASNOTE 2.2.2.2 (a sample
    of pages 24 and 23); and the MS-ASWBXML note, as transcribed by
    Aspose, that GetItemEstimate Version and DateTime exist only in 12.1.
  - Versions, second pass (element by element against the "Protocol
    Versions" table of each element's own section on Microsoft's
    Open Specifications pages; the 2.5 row was compared too).  Every row
    below matched the table already; no version set had to change:
      Calendar (4): Attendee 2.2.2.3, AttendeeStatus 2.2.2.5 and
        AttendeeType 2.2.2.6 (12.0+), ClientUid 2.2.2.13 (16.0+),
        DisallowNewTimeProposal 2.2.2.17 (14.0+), Email 2.2.2.19,
        Exceptions 2.2.2.22, ExceptionStartTime 2.2.2.23 (2.5-14.1), Name
        2.2.2.30, OnlineMeetingConfLink 2.2.2.33 and
        OnlineMeetingExternalLink 2.2.2.34 (14.1+), OrganizerEmail
        2.2.2.35, OrganizerName 2.2.2.36, ResponseRequested 2.2.2.39
        (14.0+), StartTime 2.2.2.42, UID (all as a top-level element; the
        Exception child is 2.5 only).
      Email (2): DateReceived 2.2.2.24, DisallowNewTimeProposal 2.2.2.27
        (14.0+), DtStamp 2.2.2.30, EndTime 2.2.2.32, FlagType 2.2.2.35
        (12.0+), Location 2.2.2.46 (2.5-14.1; airsyncbase:Location from
        16.0), Organizer 2.2.2.57, RecurrenceId 2.2.2.61,
        ResponseRequested 2.2.2.67, StartTime
        2.2.2.73, Subject 2.2.2.75.1, To 2.2.2.79.
      Email2 (22): CalendarType 2.2.2.15, ConversationId 2.2.2.21,
        LastVerbExecuted 2.2.2.44, LastVerbExecutionTime 2.2.2.45 (14.0+);
        IsDraft 2.2.2.42, Send 2.2.2.69 (16.0+).
      AirSyncBase (17): Type 2.2.2.41.1 (Body, 12.0+; BodyPart 14.1+),
        Preview 2.2.2.35.1 (Body, 14.0+; BodyPart 14.1+), EstimatedDataSize
        2.2.2.23.3 (BodyPart, 14.1+), Status 2.2.2.37 (14.1+), ClientId
        2.2.2.14 and InstanceId 2.2.2.25 (16.0+), Attachments 2.2.2.8
        and NativeBodyType (12.0+; also MS-ASEMAIL 2.2.2.4.1, MS-ASCAL
        2.2.2.31).
        A token whose element several sections define (Type, Preview,
        EstimatedDataSize) carries the union of their versions.
      Contacts (1): Alias 2.2.2.2 and WeightedRank 2.2.2.64 (14.0+),
        Email1Address 2.2.2.27, FileAs 2.2.2.30, OtherAddressStreet
        2.2.2.56, Picture 2.2.2.58 (all); Contacts2 MMS 2.2.2.48 (all).
      Tasks (9): OrdinalDate (12.0+, MS-ASEMAIL 2.2.2.56).
      Notes (23): Categories 2.2.2.2, LastModifiedDate 2.2.2.4,
        MessageClass 2.2.2.5 (14.0+).
      ComposeMail (21): InstanceId 2.2.3.92.2 (14.0+).
      Settings (18): AccountId 2.2.3.3.2 (14.1+), EmailAddresses 2.2.3.57
        and SMTPAddress 2.2.3.171 (12.0+).
      GAL (16): Data 2.2.3.39.4 (14.1+).
      Find (25): MaxSize 2.2.3.105.1 (16.1).
      MeetingResponse (8): MeetingResponse 2.2.3.106, Result 2.2.3.155.2,
        UserResponse (all).
    Sections whose table the stored copy cuts off part way, so confirmed
    only for the rows shown (none contradicts the table here):
    Calendar AppointmentReplyTime 2.2.2.2 and IsLeapMonth 2.2.2.26
    (absent 2.5-12.1, present 14.0; later rows cut), AirSyncBase Part
    2.2.2.33 (12.0-16.0 shown), Search MaxSize and MaxPictures
    2.2.3.104.3 (absent 2.5-14.0, present 14.1; later rows cut).
    Sections found whose table the stored copy cuts off before the
    version rows, so not confirmed: Calendar DtStamp, MeetingStatus
    2.2.2.28 and ResponseType 2.2.2.40, Search Picture 2.2.3.135.3,
    MeetingResponse SendResponse 2.2.3.163, Email GlobalObjId 2.2.2.37,
    Email2 MeetingMessageType 2.2.2.47.  Not found (queried, no section
    returned): AirSyncBase ContentType and Location, Email InternetCPID,
    ContentClass and ThreadTopic, Email2 AccountId, FirstDayOfWeek and
    ReceivedAsBcc, Notes Subject and Category.  Every other row of pages
    1, 2, 4, 8, 9, 15-18 and 20-23 is not yet checked element by element
    (no page there is complete; page 25's other rows rest on MS-ASWBXML
    2.1.2.1.26), nor are the version columns of the pages not named in
    this list.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "VERSIONS",
    "Tag",
    "CodePage",
    "CODE_PAGES",
    "NAMESPACES",
    "PREFIXES",
    "qname",
    "tag_for",
]

#: Every protocol version MS-ASHTTP defines, oldest first.
VERSIONS: tuple[str, ...] = ("2.5", "12.0", "12.1", "14.0", "14.1", "16.0",
                             "16.1")


@dataclass(frozen=True, slots=True)
class Tag:
    """
    One token of one code page.

    C{versions} is the set of protocol versions that define the element;
    the codec itself accepts every known tag whatever the version, since
    the version is negotiated above it (the HTTP layer) and a device that
    sends an element its version does not define should get a protocol
    status, not a decoding error.
    """

    page: int
    token: int
    name: str
    versions: frozenset[str]
    opaque: bool = False
    alias: bool = False

    @property
    def namespace(self) -> str:
        """The namespace URI of this tag's page, e.g. C{"AirSync:"}."""
        return CODE_PAGES[self.page].uri

    @property
    def qualified_name(self) -> str:
        """The lxml (Clark notation) name, e.g. C{"{AirSync:}Sync"}."""
        return "{%s}%s" % (CODE_PAGES[self.page].uri, self.name)


@dataclass(frozen=True, slots=True)
class CodePage:
    """
    One code page: its number, the namespace name used in EAS XML, the
    conventional lower-case prefix and its tags (aliases included).
    """

    number: int
    name: str
    prefix: str
    tags: tuple[Tag, ...]

    @property
    def uri(self) -> str:
        """The namespace URI: the page name followed by a colon."""
        return self.name + ":"

    def by_token(self, token: int) -> Tag | None:
        """The primary tag for C{token}, or None."""
        for tag in self.tags:
            if tag.token == token and not tag.alias:
                return tag
        return None

    def by_name(self, name: str) -> Tag | None:
        """The tag called C{name} (primary or alias), or None."""
        for tag in self.tags:
            if tag.name == name:
                return tag
        return None


# Each page: number -> (namespace name, prefix, table).
# Table lines: "TOKEN Name versions [opaque] [alias]".
_TABLES: dict[int, tuple[str, str, str]] = {
    0: ("AirSync", "airsync", """
        05 Sync                 all
        06 Responses            all
        07 Add                  all
        08 Change               all
        09 Delete               all
        0A Fetch                all
        0B SyncKey              all
        0C ClientId             all
        0D ServerId             all
        0E Status               all
        0F Collection           all
        10 Class                all
        12 CollectionId         all
        13 GetChanges           all
        14 MoreAvailable        all
        15 WindowSize           all
        16 Commands             all
        17 Options              all
        18 FilterType           all
        19 Truncation           2.5
        1B Conflict             all
        1C Collections          all
        1D ApplicationData      all
        1E DeletesAsMoves       all
        20 Supported            all
        21 SoftDelete           all
        22 MIMESupport          all
        23 MIMETruncation       all
        24 Wait                 12.1+
        25 Limit                12.1+
        26 Partial              12.1+
        27 ConversationMode     14.0+
        28 MaxItems             14.0+
        29 HeartbeatInterval    14.0+
    """),
    1: ("Contacts", "contacts", """
        05 Anniversary                  all
        06 AssistantName                all
        07 AssistantPhoneNumber         all
        08 Birthday                     all
        09 Body                         2.5
        0A BodySize                     2.5
        0B BodyTruncated                2.5
        0C Business2PhoneNumber         all
        0D BusinessAddressCity          all
        0E BusinessAddressCountry       all
        0F BusinessAddressPostalCode    all
        10 BusinessAddressState         all
        11 BusinessAddressStreet        all
        12 BusinessFaxNumber            all
        13 BusinessPhoneNumber          all
        14 CarPhoneNumber               all
        15 Categories                   all
        16 Category                     all
        17 Children                     all
        18 Child                        all
        19 CompanyName                  all
        1A Department                   all
        1B Email1Address                all
        1C Email2Address                all
        1D Email3Address                all
        1E FileAs                       all
        1F FirstName                    all
        20 Home2PhoneNumber             all
        21 HomeAddressCity              all
        22 HomeAddressCountry           all
        23 HomeAddressPostalCode        all
        24 HomeAddressState             all
        25 HomeAddressStreet            all
        26 HomeFaxNumber                all
        27 HomePhoneNumber              all
        28 JobTitle                     all
        29 LastName                     all
        2A MiddleName                   all
        2B MobilePhoneNumber            all
        2C OfficeLocation               all
        2D OtherAddressCity             all
        2E OtherAddressCountry          all
        2F OtherAddressPostalCode       all
        30 OtherAddressState            all
        31 OtherAddressStreet           all
        32 PagerNumber                  all
        33 RadioPhoneNumber             all
        34 Spouse                       all
        35 Suffix                       all
        36 Title                        all
        37 WebPage                      all
        38 YomiCompanyName              all
        39 YomiFirstName                all
        3A YomiLastName                 all
        3B CompressedRTF                2.5
        3C Picture                      all
        3D Alias                        14.0+
        3E WeightedRank                 14.0+
    """),
    2: ("Email", "email", """
        05 Attachment               2.5
        06 Attachments              2.5
        07 AttName                  2.5
        08 AttSize                  2.5
        09 AttOid                   2.5
        0A AttMethod                2.5
        0B AttRemoved               2.5
        0C Body                     2.5
        0D BodySize                 2.5
        0E BodyTruncated            2.5
        0F DateReceived             all
        10 DisplayName              2.5
        11 DisplayTo                all
        12 Importance               all
        13 MessageClass             all
        14 Subject                  all
        15 Read                     all
        16 To                       all
        17 Cc                       all
        18 From                     all
        19 ReplyTo                  all
        1A AllDayEvent              all
        1B Categories               14.0+
        1C Category                 14.0+
        1D DtStamp                  all
        1E EndTime                  all
        1F InstanceType             all
        20 BusyStatus               all
        21 Location                 -14.1
        22 MeetingRequest           all
        23 Organizer                all
        24 RecurrenceId             all
        25 Reminder                 all
        26 ResponseRequested        all
        27 Recurrences              all
        28 Recurrence               all
        29 Type                     all
        2A Until                    all
        2B Occurrences              all
        2C Interval                 all
        2D DayOfWeek                all
        2E DayOfMonth               all
        2F WeekOfMonth              all
        30 MonthOfYear              all
        31 StartTime                all
        32 Sensitivity              all
        33 TimeZone                 all
        34 GlobalObjId              -14.1
        35 ThreadTopic              all
        36 MIMEData                 2.5
        37 MIMETruncated            2.5
        38 MIMESize                 2.5
        39 InternetCPID             all
        3A Flag                     12.0+
        3B Status                   12.0+
        3B FlagStatus               12.0+   alias
        3C ContentClass             12.0+
        3D FlagType                 12.0+
        3E CompleteTime             12.0+
        3F DisallowNewTimeProposal  14.0+
    """),
    3: ("AirNotify", "airnotify", """
        05 Notify                   none
        06 Notification             none
        07 Version                  none
        08 Lifetime                 none
        09 DeviceInfo               none
        0A Enable                   none
        0B Folder                   none
        0C ServerId                 none
        0D DeviceAddress            none
        0E ValidCarrierProfiles     none
        0F CarrierProfile           none
        10 Status                   none
        11 Responses                none
        12 Devices                  none
        13 Device                   none
        14 Id                       none
        15 Expiry                   none
        16 NotifyGUID               none
        17 DeviceFriendlyName       none
    """),
    4: ("Calendar", "calendar", """
        05 Timezone                     all
        05 TimeZone                     all     alias
        06 AllDayEvent                  all
        07 Attendees                    all
        08 Attendee                     all
        09 Email                        all
        0A Name                         all
        0B Body                         2.5
        0C BodyTruncated                2.5
        0D BusyStatus                   all
        0E Categories                   all
        0F Category                     all
        10 CompressedRTF                2.5
        11 DtStamp                      all
        12 EndTime                      all
        13 Exception                    all
        14 Exceptions                   all
        15 Deleted                      all
        16 ExceptionStartTime           -14.1
        17 Location                     -14.1
        18 MeetingStatus                all
        19 OrganizerEmail               all
        1A OrganizerName                all
        1B Recurrence                   all
        1C Type                         all
        1D Until                        all
        1E Occurrences                  all
        1F Interval                     all
        20 DayOfWeek                    all
        21 DayOfMonth                   all
        22 WeekOfMonth                  all
        23 MonthOfYear                  all
        24 Reminder                     all
        25 Sensitivity                  all
        26 Subject                      all
        27 StartTime                    all
        28 UID                          all
        29 AttendeeStatus               12.0+
        2A AttendeeType                 12.0+
        33 DisallowNewTimeProposal      14.0+
        34 ResponseRequested            14.0+
        35 AppointmentReplyTime         14.0+
        36 ResponseType                 14.0+
        37 CalendarType                 14.0+
        38 IsLeapMonth                  14.0+
        39 FirstDayOfWeek               14.1+
        3A OnlineMeetingConfLink        14.1+
        3B OnlineMeetingExternalLink    14.1+
        3C ClientUid                    16.0+
    """),
    5: ("Move", "move", """
        05 MoveItems    all
        06 Move         all
        07 SrcMsgId     all
        08 SrcFldId     all
        09 DstFldId     all
        0A Response     all
        0B Status       all
        0C DstMsgId     all
    """),
    6: ("GetItemEstimate", "getitemestimate", """
        05 GetItemEstimate  all
        06 Version          12.1
        07 Collections      all
        08 Collection       all
        09 Class            -12.1
        0A CollectionId     all
        0B DateTime         12.1
        0C Estimate         all
        0D Response         all
        0E Status           all
    """),
    7: ("FolderHierarchy", "folderhierarchy", """
        05 Folders          -12.1
        06 Folder           -12.1
        07 DisplayName      all
        08 ServerId         all
        09 ParentId         all
        0A Type             all
        0C Status           all
        0E Changes          all
        0F Add              all
        10 Delete           all
        11 Update           all
        12 SyncKey          all
        13 FolderCreate     all
        14 FolderDelete     all
        15 FolderUpdate     all
        16 FolderSync       all
        17 Count            all
    """),
    8: ("MeetingResponse", "meetingresponse", """
        05 CalendarId           all
        06 CollectionId         all
        07 MeetingResponse      all
        08 RequestId            all
        09 Request              all
        0A Result               all
        0B Status               all
        0C UserResponse         all
        0E InstanceId           14.1+
        10 ProposedStartTime    16.1
        11 ProposedEndTime      16.1
        12 SendResponse         16.0+
    """),
    9: ("Tasks", "tasks", """
        05 Body             2.5
        06 BodySize         2.5
        07 BodyTruncated    2.5
        08 Categories       all
        09 Category         all
        0A Complete         all
        0B DateCompleted    all
        0C DueDate          all
        0D UtcDueDate       all
        0E Importance       all
        0F Recurrence       all
        10 Type             all
        11 Start            all
        12 Until            all
        13 Occurrences      all
        14 Interval         all
        15 DayOfMonth       all
        16 DayOfWeek        all
        17 WeekOfMonth      all
        18 MonthOfYear      all
        19 Regenerate       all
        1A DeadOccur        all
        1B ReminderSet      all
        1C ReminderTime     all
        1D Sensitivity      all
        1E StartDate        all
        1F UtcStartDate     all
        20 Subject          all
        21 CompressedRTF    2.5
        22 OrdinalDate      12.0+
        23 SubOrdinalDate   12.0+
        24 CalendarType     14.0+
        25 IsLeapMonth      14.0+
        26 FirstDayOfWeek   14.1+
    """),
    10: ("ResolveRecipients", "resolverecipients", """
        05 ResolveRecipients        all
        06 Response                 all
        07 Status                   all
        08 Type                     all
        09 Recipient                all
        0A DisplayName              all
        0B EmailAddress             all
        0C Certificates             all
        0D Certificate              all
        0E MiniCertificate          all
        0F Options                  all
        10 To                       all
        11 CertificateRetrieval     all
        12 RecipientCount           all
        13 MaxCertificates          all
        14 MaxAmbiguousRecipients   all
        15 CertificateCount         all
        16 Availability             14.0+
        17 StartTime                14.0+
        18 EndTime                  14.0+
        19 MergedFreeBusy           14.0+
        1A Picture                  14.1+
        1B MaxSize                  14.1+
        1C Data                     14.1+
        1D MaxPictures              14.1+
    """),
    11: ("ValidateCert", "validatecert", """
        05 ValidateCert         all
        06 Certificates         all
        07 Certificate          all
        08 CertificateChain     all
        09 CheckCRL             all
        0A Status               all
    """),
    12: ("Contacts2", "contacts2", """
        05 CustomerId           all
        06 GovernmentId         all
        07 IMAddress            all
        08 IMAddress2           all
        09 IMAddress3           all
        0A ManagerName          all
        0B CompanyMainPhone     all
        0C AccountName          all
        0D NickName             all
        0E MMS                  all
    """),
    13: ("Ping", "ping", """
        05 Ping                 all
        06 AutdState            none
        07 Status               all
        08 HeartbeatInterval    all
        09 Folders              all
        0A Folder               all
        0B Id                   all
        0C Class                all
        0D MaxFolders           all
    """),
    14: ("Provision", "provision", """
        05 Provision                                all
        06 Policies                                 all
        07 Policy                                   all
        08 PolicyType                               all
        09 PolicyKey                                all
        0A Data                                     all
        0B Status                                   all
        0C RemoteWipe                               all
        0D EASProvisionDoc                          12.0+
        0E DevicePasswordEnabled                    12.0+
        0F AlphanumericDevicePasswordRequired       12.0+
        10 RequireStorageCardEncryption             12.1+
        10 DeviceEncryptionEnabled                  12.0 alias
        11 PasswordRecoveryEnabled                  12.0+
        13 AttachmentsEnabled                       12.0+
        14 MinDevicePasswordLength                  12.0+
        15 MaxInactivityTimeDeviceLock              12.0+
        16 MaxDevicePasswordFailedAttempts          12.0+
        17 MaxAttachmentSize                        12.0+
        18 AllowSimpleDevicePassword                12.0+
        19 DevicePasswordExpiration                 12.0+
        1A DevicePasswordHistory                    12.0+
        1B AllowStorageCard                         12.1+
        1C AllowCamera                              12.1+
        1D RequireDeviceEncryption                  12.1+
        1E AllowUnsignedApplications                12.1+
        1F AllowUnsignedInstallationPackages        12.1+
        20 MinDevicePasswordComplexCharacters       12.1+
        21 AllowWiFi                                12.1+
        22 AllowTextMessaging                       12.1+
        23 AllowPOPIMAPEmail                        12.1+
        24 AllowBluetooth                           12.1+
        25 AllowIrDA                                12.1+
        26 RequireManualSyncWhenRoaming             12.1+
        27 AllowDesktopSync                         12.1+
        28 MaxCalendarAgeFilter                     12.1+
        29 AllowHTMLEmail                           12.1+
        2A MaxEmailAgeFilter                        12.1+
        2B MaxEmailBodyTruncationSize               12.1+
        2C MaxEmailHTMLBodyTruncationSize           12.1+
        2D RequireSignedSMIMEMessages               12.1+
        2E RequireEncryptedSMIMEMessages            12.1+
        2F RequireSignedSMIMEAlgorithm              12.1+
        30 RequireEncryptionSMIMEAlgorithm          12.1+
        31 AllowSMIMEEncryptionAlgorithmNegotiation 12.1+
        32 AllowSMIMESoftCerts                      12.1+
        33 AllowBrowser                             12.1+
        34 AllowConsumerEmail                       12.1+
        35 AllowRemoteDesktop                       12.1+
        36 AllowInternetSharing                     12.1+
        37 UnapprovedInROMApplicationList           12.1+
        38 ApplicationName                          12.1+
        39 ApprovedApplicationList                  12.1+
        3A Hash                                     12.1+
        3B AccountOnlyRemoteWipe                    16.1
    """),
    15: ("Search", "search", """
        05 Search           all
        07 Store            all
        08 Name             all
        09 Query            all
        0A Options          all
        0B Range            all
        0C Status           all
        0D Response         all
        0E Result           all
        0F Properties       all
        10 Total            all
        11 EqualTo          12.0+
        12 Value            12.0+
        13 And              12.0+
        14 Or               12.0+
        15 FreeText         12.0+
        17 DeepTraversal    12.0+
        18 LongId           12.0+
        19 RebuildResults   12.0+
        1A LessThan         12.0+
        1B GreaterThan      12.0+
        1E UserName         12.1+
        1F Password         12.1+
        20 ConversationId   14.0+   opaque
        21 Picture          14.1+
        22 MaxSize          14.1+
        23 MaxPictures      14.1+
    """),
    16: ("GAL", "gal", """
        05 DisplayName      all
        06 Phone            all
        07 Office           all
        08 Title            all
        09 Company          all
        0A Alias            all
        0B FirstName        all
        0C LastName         all
        0D HomePhone        all
        0E MobilePhone      all
        0F EmailAddress     all
        10 Picture          14.1+
        11 Status           14.1+
        12 Data             14.1+
    """),
    17: ("AirSyncBase", "airsyncbase", """
        05 BodyPreference       12.0+
        06 Type                 12.0+
        07 TruncationSize       12.0+
        08 AllOrNone            12.0+
        0A Body                 12.0+
        0B Data                 12.0+
        0C EstimatedDataSize    12.0+
        0D Truncated            12.0+
        0E Attachments          12.0+
        0F Attachment           12.0+
        10 DisplayName          12.0+
        11 FileReference        12.0+
        12 Method               12.0+
        13 ContentId            12.0+
        14 ContentLocation      12.0+
        15 IsInline             12.0+
        16 NativeBodyType       12.0+
        17 ContentType          12.0+
        18 Preview              14.0+
        19 BodyPartPreference   14.1+
        1A BodyPart             14.1+
        1B Status               14.1+
        1C Add                  16.0+
        1D Delete               16.0+
        1E ClientId             16.0+
        1F Content              16.0+   opaque
        20 Location             16.0+
        21 Annotation           16.0+
        22 Street               16.0+
        23 City                 16.0+
        24 State                16.0+
        25 Country              16.0+
        26 PostalCode           16.0+
        27 Latitude             16.0+
        28 Longitude            16.0+
        29 Accuracy             16.0+
        2A Altitude             16.0+
        2B AltitudeAccuracy     16.0+
        2C LocationUri          16.0+
        2D InstanceId           16.0+
    """),
    18: ("Settings", "settings", """
        05 Settings                     12.0+
        06 Status                       12.0+
        07 Get                          12.0+
        08 Set                          12.0+
        09 Oof                          12.0+
        0A OofState                     12.0+
        0B StartTime                    12.0+
        0C EndTime                      12.0+
        0D OofMessage                   12.0+
        0E AppliesToInternal            12.0+
        0F AppliesToExternalKnown       12.0+
        10 AppliesToExternalUnknown     12.0+
        11 Enabled                      12.0+
        12 ReplyMessage                 12.0+
        13 BodyType                     12.0+
        14 DevicePassword               12.0+
        15 Password                     12.0+
        16 DeviceInformation            12.0+
        17 Model                        12.0+
        18 IMEI                         12.0+
        19 FriendlyName                 12.0+
        1A OS                           12.0+
        1B OSLanguage                   12.0+
        1C PhoneNumber                  12.0+
        1D UserInformation              12.0+
        1E EmailAddresses               12.0+
        1F SMTPAddress                  12.0+
        20 UserAgent                    12.1+
        21 EnableOutboundSMS            14.0+
        22 MobileOperator               14.0+
        23 PrimarySmtpAddress           14.1+
        24 Accounts                     14.1+
        25 Account                      14.1+
        26 AccountId                    14.1+
        27 AccountName                  14.1+
        28 UserDisplayName              14.1+
        29 SendDisabled                 14.1+
        2B RightsManagementInformation  14.1+
    """),
    19: ("DocumentLibrary", "documentlibrary", """
        05 LinkId               12.0+
        06 DisplayName          12.0+
        07 IsFolder             12.0+
        08 CreationDate         12.0+
        09 LastModifiedDate     12.0+
        0A IsHidden             12.0+
        0B ContentLength        12.0+
        0C ContentType          12.0+
    """),
    20: ("ItemOperations", "itemoperations", """
        05 ItemOperations       12.0+
        06 Fetch                12.0+
        07 Store                12.0+
        08 Options              12.0+
        09 Range                12.0+
        0A Total                12.0+
        0B Properties           12.0+
        0C Data                 12.0+
        0D Status               12.0+
        0E Response             12.0+
        0F Version              12.0+
        10 Schema               12.0+
        11 Part                 12.0+
        12 EmptyFolderContents  12.0+
        13 DeleteSubFolders     12.0+
        14 UserName             12.1+
        15 Password             12.1+
        16 Move                 14.0+
        17 DstFldId             14.0+
        18 ConversationId       14.0+   opaque
        19 MoveAlways           14.0+
    """),
    21: ("ComposeMail", "composemail", """
        05 SendMail         14.0+
        06 SmartForward     14.0+
        07 SmartReply       14.0+
        08 SaveInSentItems  14.0+
        09 ReplaceMime      14.0+
        0B Source           14.0+
        0C FolderId         14.0+
        0D ItemId           14.0+
        0E LongId           14.0+
        0F InstanceId       14.0+
        10 Mime             14.0+   opaque
        11 ClientId         14.0+
        12 Status           14.0+
        13 AccountId        14.1+
        15 Forwardees       16.0+
        16 Forwardee        16.0+
        17 Name             16.0+
        17 ForwardeeName    16.0+   alias
        18 Email            16.0+
        18 ForwardeeEmail   16.0+   alias
    """),
    22: ("Email2", "email2", """
        05 UmCallerID               14.0+
        06 UmUserNotes              14.0+
        07 UmAttDuration            14.0+
        08 UmAttOrder               14.0+
        09 ConversationId           14.0+   opaque
        0A ConversationIndex        14.0+   opaque
        0B LastVerbExecuted         14.0+
        0C LastVerbExecutionTime    14.0+
        0D ReceivedAsBcc            14.0+
        0E Sender                   14.0+
        0F CalendarType             14.0+
        10 IsLeapMonth              14.0+
        11 AccountId                14.1+
        12 FirstDayOfWeek           14.1+
        13 MeetingMessageType       14.1+
        15 IsDraft                  16.0+
        16 Bcc                      16.0+
        17 Send                     16.0+
    """),
    23: ("Notes", "notes", """
        05 Subject              14.0+
        06 MessageClass         14.0+
        07 LastModifiedDate     14.0+
        08 Categories           14.0+
        09 Category             14.0+
    """),
    24: ("RightsManagement", "rm", """
        05 RightsManagementSupport          14.1+
        06 RightsManagementTemplates        14.1+
        07 RightsManagementTemplate         14.1+
        08 RightsManagementLicense          14.1+
        09 EditAllowed                      14.1+
        0A ReplyAllowed                     14.1+
        0B ReplyAllAllowed                  14.1+
        0C ForwardAllowed                   14.1+
        0D ModifyRecipientsAllowed          14.1+
        0E ExtractAllowed                   14.1+
        0F PrintAllowed                     14.1+
        10 ExportAllowed                    14.1+
        11 ProgrammaticAccessAllowed        14.1+
        12 Owner                            14.1+
        13 ContentExpiryDate                14.1+
        14 TemplateID                       14.1+
        15 TemplateName                     14.1+
        16 TemplateDescription              14.1+
        17 ContentOwner                     14.1+
        18 RemoveRightsManagementProtection 14.1+
    """),
    25: ("Find", "find", """
        05 Find                     16.1
        06 SearchId                 16.1
        07 ExecuteSearch            16.1
        08 MailBoxSearchCriterion   16.1
        09 Query                    16.1
        0A Status                   16.1
        0B FreeText                 16.1
        0C Options                  16.1
        0D Range                    16.1
        0E DeepTraversal            16.1
        11 Response                 16.1
        12 Result                   16.1
        13 Properties               16.1
        14 Preview                  16.1
        15 HasAttachments           16.1
        16 Total                    16.1
        17 DisplayCc                16.1
        18 DisplayBcc               16.1
        19 GALSearchCriterion       16.1
        19 GalSearchCriterion       16.1    alias
        20 MaxPictures              16.1
        21 MaxSize                  16.1
        22 Picture                  16.1
    """),
}


def _parse_versions(text: str) -> frozenset[str]:
    """Expand the compact version notation described in the docstring."""
    if text == "all":
        return frozenset(VERSIONS)
    if text == "none":
        return frozenset()
    if text.endswith("+"):
        return frozenset(VERSIONS[VERSIONS.index(text[:-1]):])
    if text.startswith("-"):
        return frozenset(VERSIONS[:VERSIONS.index(text[1:]) + 1])
    versions = frozenset(text.split(","))
    unknown = versions.difference(VERSIONS)
    if unknown:
        raise ValueError("unknown protocol versions %r" % (sorted(unknown),))
    return versions


def _parse_page(number: int, name: str, prefix: str, table: str) -> CodePage:
    """
    Build one L{CodePage}, refusing tables that would make the codec
    ambiguous: tokens outside 0x05..0x3F, duplicate tokens or names.
    """
    tags: list[Tag] = []
    tokens: set[int] = set()
    names: set[str] = set()
    for line in table.strip().splitlines():
        fields = line.split()
        token, tag_name, versions = int(fields[0], 16), fields[1], fields[2]
        flags = set(fields[3:])
        if flags - {"opaque", "alias"}:
            raise ValueError("bad flags on page %d: %r" % (number, line))
        alias = "alias" in flags
        if not 0x05 <= token <= 0x3F:
            raise ValueError("token out of range on page %d: %r"
                             % (number, line))
        if tag_name in names or (token in tokens and not alias):
            raise ValueError("duplicate on page %d: %r" % (number, line))
        if alias and token not in tokens:
            raise ValueError("alias before its primary on page %d: %r"
                             % (number, line))
        tokens.add(token)
        names.add(tag_name)
        tags.append(Tag(number, token, tag_name, _parse_versions(versions),
                        opaque="opaque" in flags, alias=alias))
    return CodePage(number, name, prefix, tuple(tags))


#: Every code page by number.
CODE_PAGES: dict[int, CodePage] = {
    number: _parse_page(number, name, prefix, table)
    for number, (name, prefix, table) in sorted(_TABLES.items())
}

#: Conventional prefix -> namespace URI, for serialising and for XPath.
#: The prefixes are the lower-cased page names the MS-AS* XML examples use,
#: except RightsManagement, whose examples use "rm".
NAMESPACES: dict[str, str] = {
    page.prefix: page.uri for page in CODE_PAGES.values()
}

#: Namespace URI -> prefix, the reverse of L{NAMESPACES}.
PREFIXES: dict[str, str] = {uri: prefix for prefix, uri in NAMESPACES.items()}

_PAGE_BY_NAME: dict[str, CodePage] = {
    page.name: page for page in CODE_PAGES.values()
}


def qname(namespace: str, name: str) -> str:
    """
    The lxml qualified name of element C{name} in code page C{namespace},
    e.g. C{qname("AirSync", "Sync") == "{AirSync:}Sync"}.

    Raises KeyError for a namespace or element the code pages do not have,
    so that a typo in a command module fails loudly at import rather than
    producing an element the encoder will refuse later.
    """
    page = _PAGE_BY_NAME[namespace]
    if page.by_name(name) is None:
        raise KeyError("%s has no element %r" % (namespace, name))
    return "{%s}%s" % (page.uri, name)


def tag_for(qualified_name: str) -> Tag | None:
    """The L{Tag} for an lxml qualified name, or None if unknown."""
    if not qualified_name.startswith("{"):
        return None
    uri, _, name = qualified_name[1:].partition("}")
    if not uri.endswith(":"):
        return None
    page = _PAGE_BY_NAME.get(uri[:-1])
    return None if page is None else page.by_name(name)
