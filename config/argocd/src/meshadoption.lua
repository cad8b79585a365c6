local st = obj.status
if st ~= nil and st.phase ~= nil then
  if st.phase == "Held" then
    hs.status = "Degraded"
  elseif st.phase == "Pending" or st.phase == "Enrolling" then
    if hs.status == "Healthy" then
      hs.status = "Progressing"
    end
  elseif st.phase == "Paused" and hs.status == "Healthy" then
    hs.status = "Suspended"
  end
  hs.message = "Adoption " .. st.phase .. " (" .. (st.enrolledNamespaces or 0) .. " of " .. (st.totalNamespaces or 0) .. " namespaces enrolled). " .. hs.message
end
return hs
