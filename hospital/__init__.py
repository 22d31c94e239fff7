"""Hospital integration: DICOM networking (listener and sender), the unmatched-patient
queue, DICOM SR / Secondary Capture results and the FHIR export. Imports scans and
accounts, never portal: the workflow services in portal/workflow call into it."""
